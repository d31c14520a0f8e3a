# The parts of Windows itself (not Hyper-V) that labctl's scripts read and that PowerShell on Linux
# lacks: Get-CimInstance for Win32_OperatingSystem and Win32_Volume, and Get-Acl for a file's
# access rules. Found by command autoloading, as the CimCmdlets and Microsoft.PowerShell.Security
# commands are on Windows. Simulated from the same state directory as the Hyper-V module.
. (Join-Path $PSScriptRoot '../../SimCommon.ps1')

function Get-SimHostJson {
  $file = Join-Path $script:SimDir 'host.json'
  if (-not (Test-Path -LiteralPath $file)) { return @{ vms = @() } }
  return (ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($file)) -AsHashtable)
}

function Get-CimInstance {
  [CmdletBinding(DefaultParameterSetName = 'ClassNameComputerSet')]
  param(
    [Parameter(ParameterSetName = 'ClassNameComputerSet', Mandatory = $true, Position = 0)] [string]$ClassName,
    [string]$Namespace = 'root/cimv2',
    [string]$Filter,
    [string[]]$Property,
    [Alias('CN', 'ServerName')] [string[]]$ComputerName
  )
  switch ($ClassName) {
    'Win32_OperatingSystem' {
      $used = 0
      foreach ($vm in @((Get-SimHostJson).vms)) { if ($vm -and $vm.state -eq 'Running') { $used += [long]$vm.memoryBytes } }
      $free = [long](Get-SimKnob 'freeMemoryBytes' 68719476736) - $used
      [pscustomobject]@{
        PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_OperatingSystem'
        Caption = 'Microsoft Windows Server 2019 Datacenter'; Version = (Get-SimKnob 'osVersion' '10.0.17763'); BuildNumber = ((Get-SimKnob 'osVersion' '10.0.17763') -split '\.')[2]
        FreePhysicalMemory = [uint64][math]::Max(0, [math]::Floor($free / 1024)); TotalVisibleMemorySize = [uint64](137438953472 / 1024)
      }
    }
    'Win32_Volume' {
      # Volumes: drive letters, and mount points such as a Cluster Shared Volume under C:\ClusterStorage.
      $volumes = @(Get-SimKnob 'volumes' @())
      if ($volumes.Count -eq 0) { $volumes = @(@{ name = 'C:\' }, @{ name = 'D:\' }) }
      foreach ($volume in $volumes) {
        $free = if ($volume['freeBytes']) { $volume.freeBytes } else { Get-SimKnob 'freeBytes' 536870912000 }
        [pscustomobject]@{
          PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Volume'
          Name = $volume.name; DriveLetter = $(if ($volume.name -match '^[A-Z]:\\$') { $volume.name.Substring(0, 2) } else { $null })
          FreeSpace = [uint64]$free; Capacity = [uint64]$(if ($volume['totalBytes']) { $volume.totalBytes } else { 1099511627776 }); FileSystem = 'NTFS'
        }
      }
    }
    default { throw [Microsoft.Management.Infrastructure.CimException]::new("Invalid class (simulator knows Win32_OperatingSystem and Win32_Volume): $ClassName") }
  }
}

function Get-Acl {
  [CmdletBinding(DefaultParameterSetName = 'ByPath')]
  param(
    [Parameter(ParameterSetName = 'ByPath', Position = 0)] [string[]]$Path,
    [Parameter(ParameterSetName = 'ByLiteralPath', Mandatory = $true)] [Alias('PSPath')] [string[]]$LiteralPath
  )
  $sids = @{ 'Everyone' = 'S-1-1-0'; 'BUILTIN\Users' = 'S-1-5-32-545'; 'Users' = 'S-1-5-32-545'; 'NT AUTHORITY\Authenticated Users' = 'S-1-5-11'; 'Authenticated Users' = 'S-1-5-11'
    'BUILTIN\Administrators' = 'S-1-5-32-544'; 'NT AUTHORITY\SYSTEM' = 'S-1-5-18' }
  foreach ($one in @($Path) + @($LiteralPath)) {
    if (-not $one) { continue }
    $local = ConvertTo-SimLocalPath $one
    if (-not $local -or -not (Test-Path -LiteralPath $local)) { throw [Management.Automation.ItemNotFoundException]::new("Cannot find path '$one' because it does not exist.") }
    $meta = Read-SimHeader $local $script:VhdTag
    $rules = @(
      @{ who = 'NT AUTHORITY\SYSTEM'; rights = 'FullControl' }, @{ who = 'BUILTIN\Administrators'; rights = 'FullControl' }, @{ who = 'BUILTIN\Users'; rights = 'ReadAndExecute, Synchronize' })
    if ($meta -and $meta['writableBy']) { foreach ($who in $meta.writableBy) { $rules += @{ who = $who; rights = 'Modify, Synchronize' } } }
    [pscustomobject]@{
      Path = $one
      Access = @(foreach ($rule in $rules) {
        $identity = [pscustomobject]@{ Value = $rule.who }
        $sid = $sids[$rule.who]
        $identity | Add-Member -MemberType ScriptMethod -Name Translate -Value ([scriptblock]::Create("param(`$type) [pscustomobject]@{ Value = '$sid' }"))
        $identity | Add-Member -MemberType ScriptMethod -Name ToString -Value { $this.Value } -Force
        [pscustomobject]@{ AccessControlType = 'Allow'; FileSystemRights = [Security.AccessControl.FileSystemRights]$rule.rights; IdentityReference = $identity; IsInherited = $false }
      })
    }
  }
}
