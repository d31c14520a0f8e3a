# A Hyper-V simulator, for running labctl's generated scripts under a real PowerShell engine on Linux.
# It is NOT Hyper-V: it is a module named Hyper-V whose cmdlets have the names, parameter sets,
# parameter types and mandatory parameters of the Hyper-V module of Windows Server 2019/2022
# (Microsoft's documented syntax), so a script that calls `Hyper-V\New-VM` with a wrong or missing
# parameter fails here as it would on a host. The host is a state directory ($env:LABCTL_HYPERV_SIM):
#   host.json      VMs, switches, host settings, VM configurations waiting to be registered
#   scenario.json  how this host misbehaves (see Get-SimScenario below)
#   drives/D/...   the host's volumes: Windows paths D:\x map to drives/D/x through PSDrives, so the
#                  scripts' Test-Path, Copy-Item and Remove-Item act on real files
# A virtual disk is a real file whose first line is `LABCTL-SIM-VHD {json}` (type, size, parent);
# a VM configuration (.vmcx) is a real file whose first line is `LABCTL-SIM-VMCX {json}`.
# Objects are of the real .NET types (HyperVTypes.cs, compiled once per testbed).
Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot '../../SimCommon.ps1')

function Join-SimPath([string]$Dir, [string]$Leaf) { return $Dir.TrimEnd('\') + '\' + $Leaf }

function Get-SimParent([string]$Path) { $at = $Path.TrimEnd('\').LastIndexOf('\'); if ($at -lt 0) { return '' } return $Path.Substring(0, $at) }

function Test-SimSamePath([string]$A, [string]$B) { return [string]::Equals(($A -replace '/', '\').TrimEnd('\'), ($B -replace '/', '\').TrimEnd('\'), [StringComparison]::OrdinalIgnoreCase) }

function Stop-SimCall {
  # Throws the way a Hyper-V cmdlet fails: a VirtualizationException whose FullyQualifiedErrorId is
  # "<id>,<cmdlet class>" (e.g. InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM).
  param($Cmdlet, [string]$Message, [string]$Id = 'OperationFailed', [Management.Automation.ErrorCategory]$Category = 'InvalidOperation', $Target = $null)
  $exception = [Microsoft.HyperV.PowerShell.VirtualizationException]::new($Message)
  $command = $Cmdlet.MyInvocation.MyCommand.Name -replace '-', ''
  $namespace = if ($command -match 'VHD$') { 'Microsoft.Vhd.PowerShell.Cmdlets' } else { 'Microsoft.HyperV.PowerShell.Commands' }
  throw [Management.Automation.ErrorRecord]::new($exception, "$Id,$namespace.$command", $Category, $Target)
}

function Invoke-SimFault {
  # The scenario's injected failure for this cmdlet, if any.
  param($Cmdlet, [string]$Name)
  $faults = Get-SimKnob 'fail' @{}
  if (-not (Test-SimKey $faults $Name)) { return }
  switch ($faults[$Name]) {
    'AccessDenied' { Stop-SimCall $Cmdlet "You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '$env:COMPUTERNAME'." 'AccessDenied' 'PermissionDenied' }
    'DiskFull' { Stop-SimCall $Cmdlet 'There is not enough space on the disk. (0x80070070)' 'OperationFailed' 'WriteError' }
    default { Stop-SimCall $Cmdlet "The operation failed. ($($faults[$Name]))" 'OperationFailed' }
  }
}

# ---- state -------------------------------------------------------------------------------------

function Use-SimState {
  # Runs $Action with the host state under an exclusive lock (scripts run concurrently per host);
  # with -Save, writes the state back. FileShare.None is an exclusive flock on Linux. The locals
  # carry a prefix: $Action sees them through PowerShell's dynamic scoping (a $vm here would hide
  # the calling cmdlet's -VM).
  param([scriptblock]$Action, [switch]$Save, [string]$Dir = $script:SimDir)
  $simLockPath = Join-Path $Dir 'host.lock'
  $simLock = $null
  for ($simTry = 0; $null -eq $simLock; $simTry++) {
    try { $simLock = [IO.File]::Open($simLockPath, 'OpenOrCreate', 'ReadWrite', 'None') }
    catch { if ($simTry -gt 3000) { throw 'Hyper-V simulator: host state locked' }; Start-Sleep -Milliseconds 10 }
  }
  try {
    $simFile = Join-Path $Dir 'host.json'
    $simState = if (Test-Path -LiteralPath $simFile) { ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($simFile)) -AsHashtable } else { @{} }
    foreach ($simKey in 'vms', 'switches') { if (-not (Test-SimKey $simState $simKey) -or $null -eq $simState[$simKey]) { $simState[$simKey] = @() } }
    if (-not (Test-SimKey $simState 'unregistered') -or $null -eq $simState.unregistered) { $simState.unregistered = @{} }
    $simState.vms = [Collections.ArrayList]@($simState.vms)
    foreach ($simRecord in $simState.vms) {
      foreach ($simKey in 'disks', 'adapters', 'checkpoints') { $simRecord[$simKey] = @($simRecord[$simKey] | Where-Object { $null -ne $_ }) }
    }
    $simResult = & $Action $simState
    if ($Save) {
      [IO.File]::WriteAllText("$simFile.$PID.tmp", (ConvertTo-Json -InputObject $simState -Depth 20))
      Move-Item -LiteralPath "$simFile.$PID.tmp" -Destination $simFile -Force
    }
    return $simResult
  } finally {
    $simLock.Dispose()
  }
}

function Find-SimVm($State, $Id, [string]$Name) {
  foreach ($vm in $State.vms) {
    if ($Id -and [string]$vm.id -eq [string]$Id) { return $vm }
    if (-not $Id -and $Name -and [string]::Equals([string]$vm.name, $Name, [StringComparison]::OrdinalIgnoreCase)) { return $vm }
  }
  return $null
}

function Get-SimVmsNamed($State, [string[]]$Name) {
  # Name parameters take wildcards, as in Hyper-V.
  if (-not $Name) { return @($State.vms) }
  return @($State.vms | Where-Object { $vm = $_; @($Name | Where-Object { $vm.name -like $_ }).Count -gt 0 })
}

function Get-SimNow { [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() }

function ConvertTo-SimVm($Data) {
  $vm = [Microsoft.HyperV.PowerShell.VirtualMachine]::new()
  $vm.Name = [string]$Data.name
  $vm.Id = [guid][string]$Data.id
  $vm.State = [string]$Data.state
  $vm.Notes = [string]$Data.notes
  $vm.Generation = [int16]$Data.generation
  $vm.MemoryStartup = [long]$Data.memoryBytes
  $vm.DynamicMemoryEnabled = [bool]($Data['dynamicMemory'])
  $vm.ProcessorCount = if ($Data['processors']) { [long]$Data.processors } else { 1 }
  $vm.Path = [string]$Data['path']
  $vm.ConfigurationLocation = [string]$Data['path']
  $vm.ComputerName = $env:COMPUTERNAME
  $vm.AutomaticCheckpointsEnabled = if ((Test-SimKey $Data 'automaticCheckpoints')) { [bool]$Data.automaticCheckpoints } else { $true }
  $vm.AutomaticStopAction = if ($Data['automaticStopAction']) { [string]$Data.automaticStopAction } else { 'Save' }
  $vm.CheckpointType = if ($Data['checkpointType']) { [string]$Data.checkpointType } else { 'Production' }
  if ($vm.State -eq 'Running' -and $Data['bootAt']) {
    $late = (Get-SimKnob 'kvp' @{})[$vm.Name] -eq 'late'
    $offset = if ($late) { 0 } else { [double](Get-SimKnob 'uptimeOffset' 600) }
    $vm.Uptime = [TimeSpan]::FromSeconds([math]::Floor(((Get-SimNow) - [double]$Data.bootAt) / 1000) + $offset)
    $vm.MemoryAssigned = $vm.MemoryStartup
  }
  return $vm
}

function Resolve-SimVmArgument {
  # -VM objects or -Name/-VMName patterns to the state's VM records. A name that matches nothing
  # is an error, as on a host.
  param($State, $Cmdlet, $VM, [string[]]$Name)
  if ($VM) {
    return @(foreach ($one in $VM) {
      $found = Find-SimVm $State $one.Id $null
      if (-not $found) { Stop-SimCall $Cmdlet "Hyper-V was unable to find a virtual machine with name `"$($one.Name)`"." 'InvalidParameter' 'InvalidArgument' $one.Name }
      $found
    })
  }
  $found = @(Get-SimVmsNamed $State $Name)
  if ($found.Count -eq 0) { Stop-SimCall $Cmdlet "Hyper-V was unable to find a virtual machine with name `"$($Name -join ', ')`"." 'InvalidParameter' 'InvalidArgument' ($Name -join ', ') }
  return $found
}

# ---- disks -------------------------------------------------------------------------------------

function Write-SimDisk([string]$Path, [hashtable]$Meta) {
  $local = ConvertTo-SimLocalPath $Path
  [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($local))
  $stream = [IO.File]::Open($local, 'CreateNew', 'Write', 'None')
  try {
    $bytes = [Text.Encoding]::UTF8.GetBytes($script:VhdTag + (ConvertTo-Json -InputObject $Meta -Compress) + "`n")
    $stream.Write($bytes, 0, $bytes.Length)
  } finally { $stream.Dispose() }
}

function Get-SimDisk {
  # The disk at a Windows path: @{ type; size; parent; fileSize } or $null when it is not a disk.
  param([string]$Path)
  $local = ConvertTo-SimLocalPath $Path
  if (-not $local -or -not (Test-Path -LiteralPath $local -PathType Leaf)) { return $null }
  $meta = Read-SimHeader $local $script:VhdTag
  if (-not $meta) { return $null }
  if (-not $meta['fileSize']) { $meta.fileSize = (Get-Item -LiteralPath $local).Length }
  return $meta
}

# ---- cmdlets: VMs ------------------------------------------------------------------------------

function Get-VM {
  [CmdletBinding(DefaultParameterSetName = 'Name')]
  [OutputType([Microsoft.HyperV.PowerShell.VirtualMachine])]
  param(
    [Parameter(ParameterSetName = 'Name', Position = 0, ValueFromPipeline = $true)] [Alias('VMName')] [ValidateNotNullOrEmpty()] [string[]]$Name,
    [Parameter(ParameterSetName = 'Id', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Nullable[guid]]$Id,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if ((Get-SimKnob 'throwOn' '') -and (Get-SimKnob 'throwOn' '') -eq $env:LABCTL_SIM_SCRIPT) {
    Stop-SimCall $PSCmdlet "Hyper-V was unable to find a virtual machine with name `"it's gone`"." 'InvalidParameter' 'InvalidArgument' "it's gone"
  }
  $found = Use-SimState {
    param($state)
    if ($PSCmdlet.ParameterSetName -eq 'Id') { @(Find-SimVm $state $Id $null | Where-Object { $_ }) } else { @(Get-SimVmsNamed $state $Name) }
  }
  if ($PSCmdlet.ParameterSetName -eq 'Id' -and @($found).Count -eq 0) {
    Stop-SimCall $PSCmdlet "Hyper-V was unable to find a virtual machine with id `"$Id`"." 'InvalidParameter' 'InvalidArgument' $Id
  }
  if ($PSCmdlet.ParameterSetName -eq 'Name' -and $Name -and @($found).Count -eq 0 -and -not [Management.Automation.WildcardPattern]::ContainsWildcardCharacters($Name[0])) {
    Stop-SimCall $PSCmdlet "Hyper-V was unable to find a virtual machine with name `"$($Name -join ', ')`"." 'InvalidParameter' 'InvalidArgument' ($Name -join ', ')
  }
  foreach ($vm in $found) { ConvertTo-SimVm $vm }
}

function New-VM {
  [CmdletBinding(DefaultParameterSetName = 'No VHD', SupportsShouldProcess = $true)]
  [OutputType([Microsoft.HyperV.PowerShell.VirtualMachine])]
  param(
    [Parameter(Position = 0)] [Alias('VMName')] [ValidateNotNullOrEmpty()] [string]$Name,
    [Parameter(Position = 1)] [long]$MemoryStartupBytes,
    [Parameter(Position = 2)] [int16]$Generation = 1,
    [ValidateSet('Floppy', 'CD', 'IDE', 'LegacyNetworkAdapter', 'NetworkAdapter', 'VHD')] [string]$BootDevice,
    [ValidateNotNullOrEmpty()] [string]$SwitchName,
    [Parameter(ParameterSetName = 'New VHD', Mandatory = $true)] [string]$NewVHDPath,
    [Parameter(ParameterSetName = 'New VHD', Mandatory = $true)] [uint64]$NewVHDSizeBytes,
    [Parameter(ParameterSetName = 'Existing VHD', Mandatory = $true)] [string]$VHDPath,
    [Parameter(ParameterSetName = 'No VHD')] [switch]$NoVHD,
    [string]$Path,
    [version]$Version,
    [switch]$Force,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if (-not $Name) { $Name = 'New Virtual Machine' }
  Invoke-SimFault $PSCmdlet 'New-VM'
  if (@(Get-SimKnob 'failCreate' @()) -contains $Name) { Stop-SimCall $PSCmdlet 'The operation failed because the file was not found.' 'OperationFailed' 'NotSpecified' $Name }
  if (-not $PSBoundParameters.ContainsKey('MemoryStartupBytes')) { $MemoryStartupBytes = if ($Generation -eq 2) { 1GB } else { 512MB } }
  if ($MemoryStartupBytes % 2MB -ne 0) {
    Stop-SimCall $PSCmdlet "Failed to modify device 'Memory'. Invalid startup memory amount assigned for '$Name'. The amount of memory must be a multiple of 2 MB." 'InvalidParameter' 'InvalidArgument' $Name
  }
  if ($Generation -ne 1 -and $Generation -ne 2) { Stop-SimCall $PSCmdlet "The generation '$Generation' is not valid; use 1 or 2." 'InvalidParameter' 'InvalidArgument' $Generation }
  if ($VHDPath -and -not (Get-SimDisk $VHDPath)) { Stop-SimCall $PSCmdlet "Failed to add device 'Virtual Hard Disk'. The system cannot find the file specified. (0x80070002)" 'ObjectNotFound' 'ObjectNotFound' $VHDPath }
  if (-not $Path) { $Path = Use-SimState { param($state) if ($state['vmHost'] -and $state.vmHost['VirtualMachinePath']) { $state.vmHost.VirtualMachinePath } else { 'C:\ProgramData\Microsoft\Windows\Hyper-V' } } }
  if (-not $PSCmdlet.ShouldProcess($Name, 'New-VM')) { return }
  $made = Use-SimState -Save {
    param($state)
    if ($SwitchName -and -not @($state.switches | Where-Object { $_.name -eq $SwitchName }).Count) {
      Stop-SimCall $PSCmdlet "Unable to find a switch with name `"$SwitchName`"." 'InvalidParameter' 'ObjectNotFound' $SwitchName
    }
    $id = [guid]::NewGuid().ToString()
    $vmDir = Join-SimPath $Path $Name
    $config = Join-SimPath (Join-SimPath $vmDir 'Virtual Machines') ($id.ToUpperInvariant() + '.vmcx')
    $local = ConvertTo-SimLocalPath $config
    if ($local) {
      [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($local))
      [IO.File]::WriteAllText($local, $script:VmcxTag + (ConvertTo-Json -InputObject @{ name = $Name; id = $id } -Compress) + "`n")
    }
    $vm = [ordered]@{
      name = $Name; id = $id; state = 'Off'; generation = [int]$Generation; memoryBytes = $MemoryStartupBytes; processors = 1
      notes = ''; path = $vmDir; config = $config; automaticCheckpoints = $true; automaticStopAction = 'Save'
      disks = @(if ($VHDPath) { $VHDPath })
      adapters = @([ordered]@{ name = 'Network Adapter'; mac = '000000000000'; dynamicMac = $true; switch = $(if ($SwitchName) { $SwitchName } else { $null }); vlan = $null })
      secureBoot = $(if ($Generation -eq 2) { 'windows' } else { $null }); secureBootEnabled = ($Generation -eq 2); secureBootTemplate = $(if ($Generation -eq 2) { 'MicrosoftWindows' } else { $null })
      checkpoints = @()
    }
    [void]$state.vms.Add($vm)
    $vm
  }
  ConvertTo-SimVm $made
}

function Set-VM {
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('VMName')] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Nullable[long]]$ProcessorCount,
    [switch]$DynamicMemory,
    [switch]$StaticMemory,
    [Nullable[long]]$MemoryMinimumBytes,
    [Nullable[long]]$MemoryMaximumBytes,
    [Nullable[long]]$MemoryStartupBytes,
    [Nullable[Microsoft.HyperV.PowerShell.StartAction]]$AutomaticStartAction,
    [Nullable[Microsoft.HyperV.PowerShell.StopAction]]$AutomaticStopAction,
    [Nullable[bool]]$AutomaticCheckpointsEnabled,
    [Nullable[Microsoft.HyperV.PowerShell.CheckpointType]]$CheckpointType,
    [string]$Notes,
    [string]$NewVMName,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Set-VM'
  # $PSBoundParameters inside the state block would be the block's own.
  $notesGiven = $PSBoundParameters.ContainsKey('Notes')
  $changed = Use-SimState -Save {
    param($state)
    $lps = [int](Get-SimKnob 'logicalProcessors' 16)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $Name)) {
      if ($null -ne $ProcessorCount) {
        if ($ProcessorCount -gt $lps) { Stop-SimCall $PSCmdlet "Failed to modify device 'Processor'. The virtual machine '$($one.name)' cannot have more virtual processors ($ProcessorCount) than the host has logical processors ($lps)." 'InvalidParameter' 'InvalidArgument' $one.name }
        $one.processors = $ProcessorCount
      }
      if ($null -ne $MemoryStartupBytes) {
        if ($MemoryStartupBytes % 2MB -ne 0) { Stop-SimCall $PSCmdlet "Failed to modify device 'Memory'. Invalid startup memory amount assigned for '$($one.name)'. The amount of memory must be a multiple of 2 MB." 'InvalidParameter' 'InvalidArgument' $one.name }
        $one.memoryBytes = $MemoryStartupBytes
      }
      if ($DynamicMemory) { $one.dynamicMemory = @{ minimumBytes = $MemoryMinimumBytes; maximumBytes = $MemoryMaximumBytes } }
      if ($StaticMemory) { $one.dynamicMemory = $null }
      if ($null -ne $AutomaticStopAction) { $one.automaticStopAction = $AutomaticStopAction.ToString() }
      if ($null -ne $AutomaticCheckpointsEnabled) { $one.automaticCheckpoints = [bool]$AutomaticCheckpointsEnabled }
      if ($null -ne $CheckpointType) { $one.checkpointType = $CheckpointType.ToString() }
      if ($notesGiven) { $one.notes = $Notes }
      if ($NewVMName) { $one.name = $NewVMName }
      $one
    }
  }
  if ($Passthru) { foreach ($one in $changed) { ConvertTo-SimVm $one } }
}

function Remove-VM {
  # Deletes the VM's configuration, never its disks (as on a host).
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true, ConfirmImpact = 'High')]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('VMName')] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [switch]$Force,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Remove-VM'
  Use-SimState -Save {
    param($state)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $Name)) {
      if ($one.state -ne 'Off' -and $one.state -ne 'Saved') { Stop-SimCall $PSCmdlet "The virtual machine '$($one.name)' cannot be deleted while it is $($one.state); turn it off first." 'InvalidState' 'InvalidOperation' $one.name }
      foreach ($config in @($one['config']) + @($one.checkpoints | ForEach-Object { $_['config'] })) {
        $local = if ($config) { ConvertTo-SimLocalPath $config } else { $null }
        if ($local -and (Test-Path -LiteralPath $local)) { Remove-Item -LiteralPath $local -Force }
      }
      $state.vms.Remove($one)
    }
  } | Out-Null
}

function Start-VM {
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('VMName')] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Start-VM'
  $started = Use-SimState -Save {
    param($state)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $Name)) {
      if ($one.state -eq 'PausedCritical') { Stop-SimCall $PSCmdlet "'$($one.name)' failed to change state. The operation cannot be performed while the object is in its current state (Paused-Critical: the volume holding its files is full)." 'InvalidState' 'InvalidOperation' $one.name }
      if ($one.state -ne 'Running') {
        # A dynamic MAC is given from the host's pool at first start, as on a host.
        $next = if ($state['nextMac']) { [int]$state.nextMac } else { 0x100 }
        foreach ($adapter in $one.adapters) {
          if ($adapter.mac -eq '000000000000') { $adapter.mac = '00155D' + $next.ToString('X6'); $next++ }
        }
        $state.nextMac = $next
        $one.state = 'Running'
        $one.bootAt = Get-SimNow
      }
      $one
    }
  }
  if ($Passthru) { foreach ($one in $started) { ConvertTo-SimVm $one } }
}

function Stop-VM {
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('VMName')] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [switch]$Save,
    [switch]$TurnOff,
    [switch]$Force,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if ($Save -and $TurnOff) { throw [Management.Automation.ParameterBindingException]::new('Parameter set cannot be resolved using the specified named parameters.') }
  Invoke-SimFault $PSCmdlet 'Stop-VM'
  # A shutdown goes through the guest's Shutdown integration service: off (disabledServices), it
  # fails; a guest listed in the scenario's ignoresShutdown never finishes it (with -AsJob the VM
  # just keeps running, as the job would).
  # Use-SimState has a -Save switch of its own, which the block would see instead of this one.
  $stopToSaved = $Save.IsPresent
  $stopTurnOff = $TurnOff.IsPresent
  $stopAsJob = $AsJob.IsPresent
  $ignores = @(Get-SimKnob 'ignoresShutdown' @())
  $stopped = Use-SimState -Save {
    param($state)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $Name)) {
      if (-not $stopToSaved -and -not $stopTurnOff -and $one.state -eq 'Running') {
        if (@($one['disabledServices']) -contains '9F8233AC-BE49-4C79-8EE3-E7E1985B2077') { Stop-SimCall $PSCmdlet "The virtual machine '$($one.name)' could not be shut down: the Shutdown integration service is not available." 'OperationFailed' 'InvalidOperation' $one.name }
        if ($ignores -contains $one.name) {
          if ($stopAsJob) { continue }
          Stop-SimCall $PSCmdlet "The virtual machine '$($one.name)' failed to shut down: the operation timed out." 'OperationTimeout' 'OperationTimeout' $one.name
        }
      }
      $one.state = if ($stopToSaved) { 'Saved' } else { 'Off' }
      $one.bootAt = $null
      $one
    }
  }
  if ($Passthru) { foreach ($one in $stopped) { ConvertTo-SimVm $one } }
}

function Checkpoint-VM {
  # A standard checkpoint: the VM's current disk gets an .avhdx child that the VM writes to from now
  # on (the chain labctl's destroy must walk back down).
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('VMName')] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(Position = 1)] [string]$SnapshotName,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Checkpoint-VM'
  $made = Use-SimState -Save {
    param($state)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $Name)) {
      if ($one.state -like '*Critical') { Stop-SimCall $PSCmdlet "'$($one.name)' could not create a checkpoint: the VM is $($one.state)." 'InvalidState' 'InvalidOperation' $one.name }
      $id = [guid]::NewGuid().ToString()
      $frozen = @($one.disks)
      $label = if ($SnapshotName) { $SnapshotName } else { "$($one.name) - $((Get-Date).ToString('MM/dd/yyyy - HH:mm:ss'))" }
      $disks = @($one.disks)
      for ($i = 0; $i -lt $disks.Count; $i++) {
        $current = [string]$disks[$i]
        $meta = Get-SimDisk $current
        $base = [IO.Path]::GetFileNameWithoutExtension(($current -split '\\')[-1]) -replace '_[0-9A-Fa-f-]{36}$', ''
        $child = Join-SimPath (Get-SimParent $current) ($base + '_' + $id.ToUpperInvariant() + '.avhdx')
        Write-SimDisk $child @{ type = 'Differencing'; parent = $current; size = $(if ($meta) { $meta.size } else { 0 }); fileSize = 4194304 }
        $disks[$i] = $child
      }
      $one.disks = $disks
      $config = Join-SimPath (Join-SimPath $one.path 'Snapshots') ($id.ToUpperInvariant() + '.vmcx')
      $local = ConvertTo-SimLocalPath $config
      if ($local) { [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($local)); [IO.File]::WriteAllText($local, $script:VmcxTag + "{}`n") }
      $parent = if (@($one.checkpoints).Count -gt 0) { @($one.checkpoints)[-1] } else { $null }
      $current = if ($one['currentCheckpoint']) { $one.currentCheckpoint } elseif ($parent) { $parent.id } else { $null }
      $one.checkpoints = @($one.checkpoints) + @([ordered]@{ id = $id; name = $label; config = $config; parentId = $current; created = (Get-Date).ToUniversalTime().ToString('o'); frozen = $frozen; vmState = $one.state })
      $one.currentCheckpoint = $id
      [pscustomobject]@{ vm = $one; id = $id }
    }
  }
  if ($Passthru) { foreach ($entry in $made) { Get-VMSnapshot -VMName $entry.vm.name | Where-Object { $_.Id -eq [guid]$entry.id } } }
}

function Get-VMSnapshot {
  [CmdletBinding(DefaultParameterSetName = 'VMName')]
  [OutputType([Microsoft.HyperV.PowerShell.VMSnapshot])]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(Position = 1)] [string]$Name,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  $vms = Use-SimState { param($state) Resolve-SimVmArgument $state $PSCmdlet $VM $VMName }
  foreach ($one in $vms) {
    foreach ($checkpoint in @($one.checkpoints)) {
      if ($Name -and $checkpoint.name -notlike $Name) { continue }
      $snapshot = [Microsoft.HyperV.PowerShell.VMSnapshot]::new()
      $snapshot.Name = $checkpoint.name; $snapshot.Id = [guid]$checkpoint.id; $snapshot.VMName = $one.name; $snapshot.VMId = [guid]$one.id
      $snapshot.Path = Join-SimPath $one.path 'Snapshots'; $snapshot.SnapshotType = 'Standard'; $snapshot.CreationTime = [datetime]$checkpoint.created
      if ($checkpoint.parentId) {
        $snapshot.ParentSnapshotId = [guid]$checkpoint.parentId
        $snapshot.ParentSnapshotName = @($one.checkpoints | Where-Object { $_.id -eq $checkpoint.parentId } | ForEach-Object { $_.name }) | Select-Object -First 1
      }
      $snapshot.State = if ($checkpoint['vmState']) { [string]$checkpoint.vmState } else { 'Off' }
      $snapshot
    }
  }
}
Set-Alias -Name Get-VMCheckpoint -Value Get-VMSnapshot

function Resolve-SimCheckpoint {
  # -VMSnapshot objects or -VMName/-Name to (VM record, checkpoint record) pairs.
  param($State, $Cmdlet, $VMSnapshot, [string[]]$VMName, [string[]]$Name)
  if ($VMSnapshot) {
    return @(foreach ($snapshot in $VMSnapshot) {
      $vm = Find-SimVm $State $snapshot.VMId $null
      $checkpoint = if ($vm) { @($vm.checkpoints | Where-Object { $_.id -eq $snapshot.Id.ToString() }) | Select-Object -First 1 }
      if (-not $checkpoint) { Stop-SimCall $Cmdlet "Hyper-V was unable to find a checkpoint with name `"$($snapshot.Name)`"." 'ObjectNotFound' 'ObjectNotFound' $snapshot.Name }
      [pscustomobject]@{ vm = $vm; checkpoint = $checkpoint }
    })
  }
  return @(foreach ($vm in (Resolve-SimVmArgument $State $Cmdlet $null $VMName)) {
    $found = @($vm.checkpoints | Where-Object { $checkpoint = $_; @($Name | Where-Object { $checkpoint.name -like $_ }).Count -gt 0 })
    if ($found.Count -eq 0) { Stop-SimCall $Cmdlet "Hyper-V was unable to find a checkpoint with name `"$($Name -join ', ')`"." 'ObjectNotFound' 'ObjectNotFound' ($Name -join ', ') }
    foreach ($checkpoint in $found) { [pscustomobject]@{ vm = $vm; checkpoint = $checkpoint } }
  })
}

function Test-SimDiskInUse($Vm, [string]$Path) {
  # A disk a checkpoint froze, or the parent of another disk of the VM, is still needed.
  foreach ($checkpoint in @($Vm.checkpoints)) { foreach ($disk in @($checkpoint['frozen'])) { if (Test-SimSamePath $disk $Path) { return $true } } }
  foreach ($disk in @($Vm.disks)) { if (Test-SimSamePath $disk $Path) { return $true } }
  return $false
}

function Restore-VMSnapshot {
  # Applies a checkpoint: the VM's current AVHDX is discarded (unless a checkpoint froze it) and a new
  # one is made on the disks the checkpoint froze; the VM takes the checkpoint's state (a standard
  # checkpoint of a running VM comes back Saved, anything else Off).
  [CmdletBinding(DefaultParameterSetName = 'SnapshotName', SupportsShouldProcess = $true, ConfirmImpact = 'High')]
  param(
    [Parameter(ParameterSetName = 'SnapshotObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMSnapshot[]]$VMSnapshot,
    [Parameter(ParameterSetName = 'SnapshotName', Mandatory = $true, Position = 0)] [string]$Name,
    [Parameter(ParameterSetName = 'SnapshotName', Mandatory = $true, Position = 1)] [string]$VMName,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Restore-VMSnapshot'
  Use-SimState -Save {
    param($state)
    foreach ($pair in (Resolve-SimCheckpoint $state $PSCmdlet $VMSnapshot @($VMName | Where-Object { $_ }) @($Name | Where-Object { $_ }))) {
      $one = $pair.vm; $checkpoint = $pair.checkpoint
      $old = @($one.disks)
      $one.disks = @()
      $new = @(foreach ($disk in @($checkpoint.frozen)) {
        $meta = Get-SimDisk $disk
        $base = [IO.Path]::GetFileNameWithoutExtension(($disk -split '\\')[-1]) -replace '_[0-9A-Fa-f-]{36}$', ''
        $child = Join-SimPath (Get-SimParent $disk) ($base + '_' + [guid]::NewGuid().ToString().ToUpperInvariant() + '.avhdx')
        Write-SimDisk $child @{ type = 'Differencing'; parent = $disk; size = $(if ($meta) { $meta.size } else { 0 }); fileSize = 4194304 }
        $child
      })
      $one.disks = $new
      foreach ($disk in $old) {
        $local = ConvertTo-SimLocalPath $disk
        if ($disk -like '*.avhdx' -and -not (Test-SimDiskInUse $one $disk) -and $local -and (Test-Path -LiteralPath $local)) { Remove-Item -LiteralPath $local -Force }
      }
      $one.state = if ($checkpoint['vmState'] -eq 'Running') { 'Saved' } else { 'Off' }
      $one.bootAt = $null
      $one.currentCheckpoint = $checkpoint.id
    }
  } | Out-Null
}

function Remove-VMSnapshot {
  # Deletes a checkpoint. Its differencing disk is merged into the disk it froze when nothing else
  # needs it: the one child disk is removed and whatever wrote to it (the VM, or a later
  # checkpoint's disk) now uses the frozen disk. Children of the checkpoint move up to its parent.
  [CmdletBinding(DefaultParameterSetName = 'SnapshotName', SupportsShouldProcess = $true, ConfirmImpact = 'High')]
  param(
    [Parameter(ParameterSetName = 'SnapshotObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMSnapshot[]]$VMSnapshot,
    [Parameter(ParameterSetName = 'SnapshotName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'SnapshotName', Position = 1)] [string[]]$Name = '*',
    [switch]$IncludeAllChildSnapshots,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Remove-VMSnapshot'
  Use-SimState -Save {
    param($state)
    foreach ($pair in (Resolve-SimCheckpoint $state $PSCmdlet $VMSnapshot $VMName $Name)) {
      $one = $pair.vm; $checkpoint = $pair.checkpoint
      $one.checkpoints = @($one.checkpoints | Where-Object { $_.id -ne $checkpoint.id })
      foreach ($child in @($one.checkpoints)) { if ($child['parentId'] -eq $checkpoint.id) { $child.parentId = $checkpoint['parentId'] } }
      if ($one['currentCheckpoint'] -eq $checkpoint.id) { $one.currentCheckpoint = $checkpoint['parentId'] }
      foreach ($frozen in @($checkpoint.frozen)) {
        if (Test-SimDiskInUse $one $frozen) { continue }
        $children = @(Get-ChildItem -LiteralPath ([IO.Path]::GetDirectoryName((ConvertTo-SimLocalPath $frozen))) -File | Where-Object { $_.Name -like '*.avhdx' } | Where-Object {
          $meta = Read-SimHeader $_.FullName $script:VhdTag; $meta -and $meta['parent'] -and (Test-SimSamePath $meta.parent $frozen) })
        if ($children.Count -ne 1) { continue }
        $merged = Join-SimPath (Get-SimParent $frozen) $children[0].Name
        # Whatever wrote to the merged disk now writes to the frozen one.
        $one.disks = @($one.disks | ForEach-Object { if (Test-SimSamePath $_ $merged) { $frozen } else { $_ } })
        foreach ($other in @(Get-ChildItem -LiteralPath ([IO.Path]::GetDirectoryName((ConvertTo-SimLocalPath $frozen))) -File)) {
          $meta = Read-SimHeader $other.FullName $script:VhdTag
          if ($meta -and $meta['parent'] -and (Test-SimSamePath $meta.parent $merged)) {
            $meta.parent = $frozen
            $rest = @([IO.File]::ReadAllLines($other.FullName) | Select-Object -Skip 1)
            [IO.File]::WriteAllText($other.FullName, $script:VhdTag + (ConvertTo-Json -InputObject $meta -Compress) + "`n" + ($rest -join "`n"))
          }
        }
        foreach ($later in @($one.checkpoints)) { $later.frozen = @($later.frozen | ForEach-Object { if (Test-SimSamePath $_ $merged) { $frozen } else { $_ } }) }
        Remove-Item -LiteralPath $children[0].FullName -Force
      }
      $config = if ($checkpoint['config']) { ConvertTo-SimLocalPath $checkpoint.config } else { $null }
      if ($config -and (Test-Path -LiteralPath $config)) { Remove-Item -LiteralPath $config -Force }
    }
  } | Out-Null
}

# ---- cmdlets: host -----------------------------------------------------------------------------

function Get-SimVmHostData($State) {
  $defaults = [ordered]@{
    VirtualMachineMigrationEnabled = $false; VirtualMachineMigrationAuthenticationType = 0; UseAnyNetworkForMigration = $false
    MaximumVirtualMachineMigrations = 2; MigrationNetworks = @()
    VirtualHardDiskPath = 'D:\Hyper-V\Virtual Hard Disks'; VirtualMachinePath = 'D:\Hyper-V'
  }
  if (-not (Test-SimKey $State 'vmHost') -or $null -eq $State.vmHost) { $State.vmHost = @{} }
  foreach ($key in $defaults.Keys) { if (-not (Test-SimKey $State.vmHost $key)) { $State.vmHost[$key] = $defaults[$key] } }
  return $State.vmHost
}

function Get-VMHost {
  [CmdletBinding()]
  [OutputType([Microsoft.HyperV.PowerShell.VMHost])]
  param([string[]]$ComputerName, [pscredential[]]$Credential)
  $data = Use-SimState { param($state) Get-SimVmHostData $state }
  $vmHost = [Microsoft.HyperV.PowerShell.VMHost]::new()
  $vmHost.ComputerName = $env:COMPUTERNAME
  $vmHost.FullyQualifiedDomainName = $env:COMPUTERNAME.ToLowerInvariant() + '.lab.test'
  $vmHost.MemoryCapacity = 137438953472
  $vmHost.LogicalProcessorCount = [int](Get-SimKnob 'logicalProcessors' 16)
  $vmHost.VirtualHardDiskPath = $data.VirtualHardDiskPath
  $vmHost.VirtualMachinePath = $data.VirtualMachinePath
  $vmHost.VirtualMachineMigrationEnabled = [bool]$data.VirtualMachineMigrationEnabled
  $vmHost.VirtualMachineMigrationAuthenticationType = [int]$data.VirtualMachineMigrationAuthenticationType
  $vmHost.UseAnyNetworkForMigration = [bool]$data.UseAnyNetworkForMigration
  $vmHost.MaximumVirtualMachineMigrations = [uint32]$data.MaximumVirtualMachineMigrations
  $vmHost.MacAddressMinimum = '00155D000100'; $vmHost.MacAddressMaximum = '00155D0001FF'
  $vmHost.SecureBootTemplates = @(foreach ($name in @(Get-SimKnob 'secureBootTemplates' @('MicrosoftWindows', 'MicrosoftUEFICertificateAuthority', 'OpenSourceShieldedVM'))) {
      $template = [Microsoft.HyperV.PowerShell.SecureBootTemplate]::new(); $template.Name = $name; $template.Id = [guid]::NewGuid(); $template })
  return $vmHost
}

function Set-VMHost {
  [CmdletBinding(SupportsShouldProcess = $true)]
  param(
    [string[]]$ComputerName,
    [pscredential[]]$Credential,
    [string]$VirtualHardDiskPath,
    [string]$VirtualMachinePath,
    [Nullable[Microsoft.HyperV.PowerShell.MigrationAuthenticationType]]$VirtualMachineMigrationAuthenticationType,
    [Nullable[uint32]]$MaximumVirtualMachineMigrations,
    [Nullable[bool]]$UseAnyNetworkForMigration,
    [string]$MacAddressMinimum,
    [string]$MacAddressMaximum,
    [switch]$Passthru
  )
  Invoke-SimFault $PSCmdlet 'Set-VMHost'
  if ($null -ne $VirtualMachineMigrationAuthenticationType -and (Get-SimKnob 'failSetVMHost' $false)) {
    Stop-SimCall $PSCmdlet "You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '$env:COMPUTERNAME'." 'AccessDenied' 'PermissionDenied'
  }
  Use-SimState -Save {
    param($state)
    $data = Get-SimVmHostData $state
    if ($VirtualHardDiskPath) { $data.VirtualHardDiskPath = $VirtualHardDiskPath }
    if ($VirtualMachinePath) { $data.VirtualMachinePath = $VirtualMachinePath }
    if ($null -ne $VirtualMachineMigrationAuthenticationType) { $data.VirtualMachineMigrationAuthenticationType = [int]$VirtualMachineMigrationAuthenticationType }
    if ($null -ne $MaximumVirtualMachineMigrations) { $data.MaximumVirtualMachineMigrations = [int]$MaximumVirtualMachineMigrations }
    if ($null -ne $UseAnyNetworkForMigration) { $data.UseAnyNetworkForMigration = [bool]$UseAnyNetworkForMigration }
  } | Out-Null
  if ($Passthru) { Get-VMHost }
}

function Enable-VMMigration {
  # Turns live migration on; adds no migration network (as on a host).
  [CmdletBinding(SupportsShouldProcess = $true)]
  param([string[]]$ComputerName, [pscredential[]]$Credential, [switch]$Passthru)
  Invoke-SimFault $PSCmdlet 'Enable-VMMigration'
  Use-SimState -Save { param($state) (Get-SimVmHostData $state).VirtualMachineMigrationEnabled = $true } | Out-Null
  if ($Passthru) { Get-VMHost }
}

function Get-VMMigrationNetwork {
  [CmdletBinding()]
  [OutputType([Microsoft.HyperV.PowerShell.VMMigrationNetwork])]
  param([Parameter(Position = 0)] [string]$Subnet, [string[]]$ComputerName, [pscredential[]]$Credential)
  $networks = Use-SimState { param($state) @((Get-SimVmHostData $state).MigrationNetworks) }
  foreach ($network in $networks) {
    if (-not $network) { continue }
    if ($Subnet -and $network.Subnet -notlike $Subnet) { continue }
    $out = [Microsoft.HyperV.PowerShell.VMMigrationNetwork]::new(); $out.Subnet = $network.Subnet; $out.Priority = [uint32]$network.Priority; $out
  }
}

function Get-VMSwitch {
  [CmdletBinding(DefaultParameterSetName = 'Name')]
  [OutputType([Microsoft.HyperV.PowerShell.VMSwitch])]
  param(
    [Parameter(ParameterSetName = 'Name', Position = 0)] [Alias('SwitchName')] [string]$Name = '*',
    [Parameter(ParameterSetName = 'Id')] [Nullable[guid]]$Id,
    [Microsoft.HyperV.PowerShell.VMSwitchType[]]$SwitchType,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  $switches = Use-SimState { param($state) @($state.switches) }
  $found = @(foreach ($entry in $switches) {
    if ($entry.name -notlike $Name) { continue }
    $out = [Microsoft.HyperV.PowerShell.VMSwitch]::new(); $out.Name = $entry.name; $out.SwitchType = $entry.type
    $out.Id = if ($entry['id']) { [guid]$entry.id } else { [guid]::Empty }
    if ($SwitchType -and $SwitchType -notcontains $out.SwitchType) { continue }
    $out
  })
  if ($found.Count -eq 0 -and $PSBoundParameters.ContainsKey('Name') -and -not [Management.Automation.WildcardPattern]::ContainsWildcardCharacters($Name)) {
    Stop-SimCall $PSCmdlet "Hyper-V was unable to find a virtual switch with name `"$Name`"." 'InvalidParameter' 'ObjectNotFound' $Name
  }
  $found
}

# ---- cmdlets: disks ----------------------------------------------------------------------------

function Get-VHD {
  [CmdletBinding(DefaultParameterSetName = 'Path')]
  [OutputType([Microsoft.Vhd.PowerShell.VirtualHardDisk])]
  param(
    [Parameter(ParameterSetName = 'Path', Mandatory = $true, Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)] [Alias('FullName')] [string[]]$Path,
    [Parameter(ParameterSetName = 'Number', Mandatory = $true)] [uint32]$DiskNumber,
    [Parameter(ParameterSetName = 'VMId', Mandatory = $true)] [guid[]]$VMId,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  process {
    Invoke-SimFault $PSCmdlet 'Get-VHD'
    foreach ($one in $Path) {
      if ($one.StartsWith('\\')) {
        Stop-SimCall $PSCmdlet "Getting the mounted storage instance for the path '$one' failed. The operation failed because access was denied. (0x80070005)" 'AccessDenied' 'PermissionDenied' $one
      }
      $meta = Get-SimDisk $one
      if (-not $meta) {
        $local = ConvertTo-SimLocalPath $one
        if ($local -and (Test-Path -LiteralPath $local -PathType Leaf)) {
          Stop-SimCall $PSCmdlet "Failed to get the disk information. The file or directory is corrupted and unreadable. (0x80070570)" 'OperationFailed' 'ReadError' $one
        }
        Stop-SimCall $PSCmdlet "Failed to get the disk information. The system cannot find the file specified. (0x80070002)" 'ObjectNotFound' 'ObjectNotFound' $one
      }
      $vhd = [Microsoft.Vhd.PowerShell.VirtualHardDisk]::new()
      $vhd.ComputerName = $env:COMPUTERNAME
      $vhd.Path = $one
      $vhd.VhdFormat = if ($one -match '\.vhd$') { 'VHD' } else { 'VHDX' }
      $vhd.VhdType = [string]$meta.type
      $vhd.Size = [uint64]$meta.size
      $vhd.FileSize = [uint64]$meta.fileSize
      $vhd.ParentPath = if ($meta['parent']) { [string]$meta.parent } else { '' }
      $vhd.DiskIdentifier = [guid]::NewGuid().ToString().ToUpperInvariant()
      $vhd
    }
  }
}

function New-VHD {
  [CmdletBinding(DefaultParameterSetName = 'DynamicWithoutSource', SupportsShouldProcess = $true)]
  [OutputType([Microsoft.Vhd.PowerShell.VirtualHardDisk])]
  param(
    [Parameter(Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [string[]]$Path,
    [Parameter(ParameterSetName = 'Differencing', Mandatory = $true, Position = 1)] [string]$ParentPath,
    [Parameter(ParameterSetName = 'Differencing')] [switch]$Differencing,
    [Parameter(ParameterSetName = 'Differencing', Position = 2)]
    [Parameter(ParameterSetName = 'FixedWithoutSource', Mandatory = $true, Position = 1)]
    [Parameter(ParameterSetName = 'DynamicWithoutSource', Mandatory = $true, Position = 1)] [uint64]$SizeBytes,
    [Parameter(ParameterSetName = 'FixedWithoutSource', Mandatory = $true)] [switch]$Fixed,
    [Parameter(ParameterSetName = 'DynamicWithoutSource')] [switch]$Dynamic,
    [uint32]$BlockSizeBytes,
    [uint32]$LogicalSectorSizeBytes,
    [uint32]$PhysicalSectorSizeBytes,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'New-VHD'
  foreach ($one in $Path) {
    $local = ConvertTo-SimLocalPath $one
    if (-not $local) { Stop-SimCall $PSCmdlet "Failed to create the virtual hard disk. The path '$one' is not on a volume of this host." 'InvalidParameter' 'InvalidArgument' $one }
    if (Test-Path -LiteralPath $local) { Stop-SimCall $PSCmdlet "Failed to create the virtual hard disk. The file exists. (0x80070050)" 'OperationFailed' 'ResourceExists' $one }
    if (-not $PSCmdlet.ShouldProcess($one, 'New-VHD')) { continue }
    if ($PSCmdlet.ParameterSetName -eq 'Differencing') {
      $parent = Get-SimDisk $ParentPath
      if (-not $parent) { Stop-SimCall $PSCmdlet "Failed to get the disk information. The system cannot find the file specified. (0x80070002)" 'ObjectNotFound' 'ObjectNotFound' $ParentPath }
      Write-SimDisk $one @{ type = 'Differencing'; parent = $ParentPath; size = $parent.size; fileSize = 4194304 }
    } else {
      Write-SimDisk $one @{ type = $(if ($Fixed) { 'Fixed' } else { 'Dynamic' }); size = $SizeBytes; fileSize = $(if ($Fixed) { $SizeBytes } else { 4194304 }) }
    }
    Get-VHD -Path $one
  }
}

function Convert-VHD {
  # Writes a new disk of -VHDType from a disk and its whole parent chain (a merged, standalone copy),
  # as on a host; refused while a running VM uses any disk of the chain. The new disk's header lists
  # the chain it was read from (mergedFrom), so tests see what was read.
  [CmdletBinding(SupportsShouldProcess = $true)]
  [OutputType([Microsoft.Vhd.PowerShell.VirtualHardDisk])]
  param(
    [Parameter(Mandatory = $true, Position = 0, ValueFromPipelineByPropertyName = $true)] [Alias('FullName')] [string]$Path,
    [Parameter(Mandatory = $true, Position = 1)] [string]$DestinationPath,
    [Microsoft.Vhd.PowerShell.VhdType]$VHDType,
    [string]$ParentPath,
    [uint32]$BlockSizeBytes,
    [switch]$DeleteSource,
    [switch]$AsJob,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Convert-VHD'
  if ($DestinationPath -notmatch '\.vhdx?$') { Stop-SimCall $PSCmdlet "Failed to convert the virtual disk. The destination '$DestinationPath' must have the extension .vhd or .vhdx." 'InvalidParameter' 'InvalidArgument' $DestinationPath }
  $chain = @()
  $current = $Path
  while ($current) {
    $meta = Get-SimDisk $current
    if (-not $meta) { Stop-SimCall $PSCmdlet "Failed to convert the virtual disk. The system cannot find the file specified. (0x80070002)" 'ObjectNotFound' 'ObjectNotFound' $current }
    $chain += $current
    $current = if ($meta['parent']) { [string]$meta.parent } else { $null }
  }
  $busy = @(Use-SimState { param($state) @($state.vms | Where-Object { $_.state -ne 'Off' -and $_.state -ne 'Saved' } | Where-Object { $vmDisks = @($_.disks); @($chain | Where-Object { $link = $_; @($vmDisks | Where-Object { Test-SimSamePath $_ $link }).Count -gt 0 }).Count -gt 0 }) })
  if ($busy.Count -gt 0) { Stop-SimCall $PSCmdlet "Failed to convert the virtual disk. The process cannot access the file because it is being used by another process. (0x80070020)" 'OperationFailed' 'ResourceBusy' $Path }
  $local = ConvertTo-SimLocalPath $DestinationPath
  if (-not $local) { Stop-SimCall $PSCmdlet "Failed to convert the virtual disk. The path '$DestinationPath' is not on a volume of this host." 'InvalidParameter' 'InvalidArgument' $DestinationPath }
  if (Test-Path -LiteralPath $local) { Stop-SimCall $PSCmdlet "Failed to convert the virtual disk. The file exists. (0x80070050)" 'OperationFailed' 'ResourceExists' $DestinationPath }
  $top = Get-SimDisk $Path
  $type = if ($VHDType) { $VHDType.ToString() } else { 'Dynamic' }
  Write-SimDisk $DestinationPath @{ type = $type; size = $top.size; fileSize = 4194304; mergedFrom = $chain }
  if ($Passthru) { Get-VHD -Path $DestinationPath }
}

function Get-VMHardDiskDrive {
  [CmdletBinding(DefaultParameterSetName = 'VMName')]
  [OutputType([Microsoft.HyperV.PowerShell.HardDiskDrive])]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Microsoft.HyperV.PowerShell.ControllerType]$ControllerType,
    [int]$ControllerNumber,
    [int]$ControllerLocation,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  process {
    $vms = Use-SimState { param($state) Resolve-SimVmArgument $state $PSCmdlet $VM $VMName }
    foreach ($one in $vms) {
      $index = 0
      foreach ($disk in @($one.disks)) {
        $drive = [Microsoft.HyperV.PowerShell.HardDiskDrive]::new()
        $drive.Name = "Hard Drive on SCSI controller number 0 at location $index"; $drive.VMName = $one.name; $drive.VMId = [guid]$one.id
        $drive.Path = $disk; $drive.ControllerType = if ([int]$one.generation -eq 2) { 'SCSI' } else { 'IDE' }; $drive.ControllerLocation = $index; $drive.Index = $index
        $drive.ComputerName = $env:COMPUTERNAME
        $index++
        $drive
      }
    }
  }
}

function Add-VMHardDiskDrive {
  # Microsoft's parameter sets (VMName, VMObject; the controller-object set is left out). The disk
  # must exist and be a VHD/VHDX: a simulated one (header) or a real one (its file signature).
  [CmdletBinding(DefaultParameterSetName = 'VMName', SupportsShouldProcess = $true)]
  [OutputType([Microsoft.HyperV.PowerShell.HardDiskDrive])]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Microsoft.HyperV.PowerShell.ControllerType]$ControllerType,
    [Parameter(Position = 1)] [int]$ControllerNumber,
    [Parameter(Position = 2)] [int]$ControllerLocation,
    [Parameter(Position = 3)] [string]$Path,
    [uint32]$DiskNumber,
    [string]$ResourcePoolName,
    [switch]$SupportPersistentReservations,
    [switch]$AllowUnverifiedPaths,
    [uint64]$MaximumIOPS,
    [uint64]$MinimumIOPS,
    [string]$QoSPolicyID,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  process {
    Invoke-SimFault $PSCmdlet 'Add-VMHardDiskDrive'
    $local = ConvertTo-SimLocalPath $Path
    if (-not $local -or -not (Test-Path -LiteralPath $local -PathType Leaf)) {
      Stop-SimCall $PSCmdlet "Failed to add device 'Virtual Hard Disk'. The system cannot find the file specified. ('$Path')" 'ObjectNotFound' 'ObjectNotFound' $Path
    }
    $head = [byte[]]::new(8)
    $stream = [IO.File]::OpenRead($local)
    try { [void]$stream.Read($head, 0, 8) } finally { $stream.Dispose() }
    $signature = [Text.Encoding]::ASCII.GetString($head)
    if ($signature -ne 'vhdxfile' -and $signature -ne 'conectix' -and -not (Read-SimHeader $local 'LABCTL-SIM-VHD')) {
      Stop-SimCall $PSCmdlet "Failed to add device 'Virtual Hard Disk'. The file '$Path' is not a virtual hard disk." 'InvalidParameter' 'InvalidArgument' $Path
    }
    $vms = Use-SimState { param($state) Resolve-SimVmArgument $state $PSCmdlet $VM $VMName }
    foreach ($one in $vms) {
      if ([int]$one.generation -eq 1 -and $ControllerType -ne 'IDE' -and $PSBoundParameters.ContainsKey('ControllerType')) {
        Stop-SimCall $PSCmdlet "Failed to add device: a generation 1 VM has no SCSI controller here ('$($one.name)')." 'InvalidParameter' 'InvalidArgument'
      }
      if ([int]$one.generation -eq 1 -and $one.state -ne 'Off') {
        Stop-SimCall $PSCmdlet "Failed to add device 'Virtual Hard Disk'. An IDE drive cannot be added while '$($one.name)' is running." 'InvalidOperation' 'InvalidOperation'
      }
      Use-SimState -Save {
        param($state)
        $stored = Find-SimVm $state ([guid]$one.id) $null
        $stored.disks = @(@($stored.disks) + $Path)
      } | Out-Null
    }
  }
}

function Set-VMHardDiskDrive {
  [CmdletBinding(DefaultParameterSetName = 'Object', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Object', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.HardDiskDrive[]]$VMHardDiskDrive,
    [Parameter(Position = 1)] [string]$Path,
    [switch]$Passthru
  )
  foreach ($drive in $VMHardDiskDrive) {
    # A drive of a VM still waiting in a compatibility report: change the pending configuration.
    $report = $drive.PSObject.Properties['LabctlReport']
    if ($report) { $report.Value.Config.disks[$drive.Index] = $Path; Save-SimPlannedVm $report.Value; continue }
    Use-SimState -Save {
      param($state)
      $vm = Find-SimVm $state $drive.VMId $null
      $disks = @($vm.disks); $disks[$drive.Index] = $Path; $vm.disks = $disks
    } | Out-Null
  }
}

# ---- cmdlets: network, firmware, integration services ------------------------------------------

function ConvertTo-SimAdapter($Vm, $Data, [int]$Index, [string]$Mode) {
  $adapter = [Microsoft.HyperV.PowerShell.VMNetworkAdapter]::new()
  $adapter.Name = $Data.name; $adapter.VMName = $Vm.name; $adapter.VMId = [guid]$Vm.id; $adapter.Index = $Index
  $adapter.MacAddress = $Data.mac; $adapter.DynamicMacAddressEnabled = [bool]$Data['dynamicMac']; $adapter.SwitchName = $Data.switch
  $adapter.ComputerName = $env:COMPUTERNAME
  $running = $Vm.state -eq 'Running'
  $adapter.IPAddresses = if ($running -and $Mode -eq 'ok' -and $Data.switch) { @("192.168.50.$(10 + $Vm.position)", "fe80::215:5dff:fe00:$((0x100 + $Vm.position).ToString('x'))") } else { @() }
  $adapter.Status = if ($running) { @([Microsoft.HyperV.PowerShell.VMOperationalStatus]::Ok) } else { @() }
  return $adapter
}

function Get-VMNetworkAdapter {
  [CmdletBinding(DefaultParameterSetName = 'VMName')]
  [OutputType([Microsoft.HyperV.PowerShell.VMNetworkAdapter])]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(ParameterSetName = 'All', Mandatory = $true)] [switch]$All,
    [Parameter(ParameterSetName = 'ManagementOS', Mandatory = $true)] [switch]$ManagementOS,
    [string]$Name = '*',
    [string]$SwitchName,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  process {
    if ($ManagementOS) { return }
    $vms = Use-SimState {
      param($state)
      $picked = if ($All) { @($state.vms) } else { Resolve-SimVmArgument $state $PSCmdlet $VM $VMName }
      foreach ($one in $picked) { $one.position = $state.vms.IndexOf($one); $one }
    }
    $kvp = Get-SimKnob 'kvp' @{}
    foreach ($one in $vms) {
      $mode = if ((Test-SimKey $kvp $one.name)) { $kvp[$one.name] } else { 'ok' }
      $index = 0
      foreach ($data in @($one.adapters)) {
        if ($data.name -like $Name -and (-not $SwitchName -or $data.switch -eq $SwitchName)) { ConvertTo-SimAdapter $one $data $index $mode }
        $index++
      }
    }
  }
}

function Update-SimAdapter {
  # Applies $Change to each adapter's state record (by VM id and index); adapters of a VM in a
  # pending compatibility report change that report's configuration instead.
  param($Cmdlet, $Adapters, [scriptblock]$Change)
  foreach ($adapter in $Adapters) {
    $report = $adapter.PSObject.Properties['LabctlReport']
    if ($report) { & $Change $report.Value.Config.adapters[$adapter.Index] $null; Save-SimPlannedVm $report.Value; continue }
    Use-SimState -Save {
      param($state)
      $vm = Find-SimVm $state $adapter.VMId $null
      if (-not $vm) { Stop-SimCall $Cmdlet "Hyper-V was unable to find the virtual machine '$($adapter.VMName)'." 'ObjectNotFound' 'ObjectNotFound' $adapter.VMName }
      & $Change @($vm.adapters)[$adapter.Index] $state
    } | Out-Null
  }
}

function Set-VMNetworkAdapter {
  [CmdletBinding(DefaultParameterSetName = 'VMName', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'ResourceObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMNetworkAdapter[]]$VMNetworkAdapter,
    [Parameter(ParameterSetName = 'VMName')] [string]$Name,
    [ValidateNotNullOrEmpty()] [string]$StaticMacAddress,
    [switch]$DynamicMacAddress,
    [Nullable[Microsoft.HyperV.PowerShell.OnOffState]]$MacAddressSpoofing,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if ($StaticMacAddress -and $StaticMacAddress -notmatch '^[0-9A-Fa-f]{12}$') {
    Stop-SimCall $PSCmdlet "Failed to modify device 'Network Adapter'. The MAC address '$StaticMacAddress' is not valid: 12 hexadecimal digits without separators." 'InvalidParameter' 'InvalidArgument' $StaticMacAddress
  }
  if (-not $VMNetworkAdapter) { $VMNetworkAdapter = @(Get-VMNetworkAdapter -VMName $VMName -Name $(if ($Name) { $Name } else { '*' })) }
  Update-SimAdapter $PSCmdlet $VMNetworkAdapter {
    param($data, $state)
    if ($StaticMacAddress) { $data.mac = $StaticMacAddress.ToUpperInvariant(); $data.dynamicMac = $false }
    if ($DynamicMacAddress) { $data.dynamicMac = $true }
  }
}

function Set-VMNetworkAdapterVlan {
  [CmdletBinding(DefaultParameterSetName = 'VMName', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'VMName', Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'ResourceObject', Mandatory = $true, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMNetworkAdapter[]]$VMNetworkAdapter,
    [Parameter(ParameterSetName = 'VMName')] [string]$VMNetworkAdapterName,
    [switch]$Untagged,
    [switch]$Access,
    [switch]$Trunk,
    [Nullable[int]]$VlanId,
    [Nullable[int]]$NativeVlanId,
    [string]$AllowedVlanIdList,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if ($Access -and $null -eq $VlanId) { Stop-SimCall $PSCmdlet 'The VlanId parameter is required in access mode.' 'InvalidParameter' 'InvalidArgument' }
  if ($null -ne $VlanId -and ($VlanId -lt 1 -or $VlanId -gt 4094)) { Stop-SimCall $PSCmdlet "The VLAN ID $VlanId is not valid: 1 to 4094." 'InvalidParameter' 'InvalidArgument' $VlanId }
  if (-not $VMNetworkAdapter) { $VMNetworkAdapter = @(Get-VMNetworkAdapter -VMName $VMName) }
  Update-SimAdapter $PSCmdlet $VMNetworkAdapter { param($data, $state) $data.vlan = $(if ($Untagged) { $null } else { $VlanId }) }
}

function Connect-VMNetworkAdapter {
  [CmdletBinding(DefaultParameterSetName = 'Name_SwitchName', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name_SwitchName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'Name_SwitchName', Position = 1)] [string[]]$Name,
    [Parameter(ParameterSetName = 'Obj_SwitchName', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMNetworkAdapter[]]$VMNetworkAdapter,
    [Parameter(Mandatory = $true, Position = 2)] [ValidateNotNullOrEmpty()] [string]$SwitchName,
    [switch]$Passthru
  )
  $exists = Use-SimState { param($state) @($state.switches | Where-Object { $_.name -eq $SwitchName }).Count -gt 0 }
  if (-not $exists) { Stop-SimCall $PSCmdlet "Unable to find a switch with name `"$SwitchName`"." 'InvalidParameter' 'ObjectNotFound' $SwitchName }
  if (-not $VMNetworkAdapter) { $VMNetworkAdapter = @(Get-VMNetworkAdapter -VMName $VMName) }
  Update-SimAdapter $PSCmdlet $VMNetworkAdapter { param($data, $state) $data.switch = $SwitchName }
}

function Disconnect-VMNetworkAdapter {
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'Name', Position = 1)] [string[]]$Name,
    [Parameter(ParameterSetName = 'Obj', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMNetworkAdapter[]]$VMNetworkAdapter,
    [switch]$Passthru
  )
  if (-not $VMNetworkAdapter) { $VMNetworkAdapter = @(Get-VMNetworkAdapter -VMName $VMName) }
  Update-SimAdapter $PSCmdlet $VMNetworkAdapter { param($data, $state) $data.switch = $null }
}

function Set-VMFirmware {
  [CmdletBinding(DefaultParameterSetName = 'VMName', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Nullable[Microsoft.HyperV.PowerShell.OnOffState]]$EnableSecureBoot,
    [string]$SecureBootTemplate,
    [Nullable[guid]]$SecureBootTemplateId,
    [Microsoft.HyperV.PowerShell.VMComponentObject]$FirstBootDevice,
    [Microsoft.HyperV.PowerShell.VMComponentObject[]]$BootOrder,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  $templates = @(Get-SimKnob 'secureBootTemplates' @('MicrosoftWindows', 'MicrosoftUEFICertificateAuthority', 'OpenSourceShieldedVM'))
  if ($SecureBootTemplate -and $templates -notcontains $SecureBootTemplate) {
    Stop-SimCall $PSCmdlet "The secure boot template '$SecureBootTemplate' was not found on this host." 'InvalidParameter' 'ObjectNotFound' $SecureBootTemplate
  }
  Use-SimState -Save {
    param($state)
    foreach ($one in (Resolve-SimVmArgument $state $PSCmdlet $VM $VMName)) {
      if ([int]$one.generation -ne 2) { Stop-SimCall $PSCmdlet "Generation 1 virtual machine '$($one.name)' does not have firmware settings." 'InvalidParameter' 'InvalidOperation' $one.name }
      if ($null -ne $EnableSecureBoot) { $one.secureBootEnabled = ($EnableSecureBoot -eq 'On') }
      if ($SecureBootTemplate) { $one.secureBootTemplate = $SecureBootTemplate }
      # A summary for tests: linux (UEFI CA), windows, or off.
      $one.secureBoot = if (-not $one.secureBootEnabled) { 'off' } elseif ($one.secureBootTemplate -eq 'MicrosoftWindows') { 'windows' } else { 'linux' }
    }
  } | Out-Null
}

function Get-VMIntegrationService {
  [CmdletBinding(DefaultParameterSetName = 'VMName')]
  [OutputType([Microsoft.HyperV.PowerShell.VMIntegrationComponent])]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(Position = 1)] [string[]]$Name = '*',
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  process {
    $vms = Use-SimState { param($state) Resolve-SimVmArgument $state $PSCmdlet $VM $VMName }
    # Names are localized on a host (here German with scenario locale=de); ids are not.
    $german = (Get-SimKnob 'locale' 'en') -eq 'de'
    $services = @(
      @('Guest Service Interface', 'Gastdienstschnittstelle', '6C09BB55-D683-4DA0-8931-C9BF705F6480'),
      @('Heartbeat', 'Takt', '84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47'),
      @('Key-Value Pair Exchange', 'Austausch von Schlüssel-Wert-Paaren', $script:KvpId),
      @('Shutdown', 'Herunterfahren', '9F8233AC-BE49-4C79-8EE3-E7E1985B2077'),
      @('Time Synchronization', 'Zeitsynchronisierung', '2497F4DE-E9FA-4204-80E4-4B75C46419C0'),
      @('VSS', 'VSS', '5CED1297-4598-4915-A5FC-AD21BB4D02A4'))
    $kvp = Get-SimKnob 'kvp' @{}
    foreach ($one in $vms) {
      $mode = if ((Test-SimKey $kvp $one.name)) { $kvp[$one.name] } else { 'ok' }
      $disabled = @($one['disabledServices'])
      foreach ($service in $services) {
        $label = if ($german) { $service[1] } else { $service[0] }
        if (@($Name | Where-Object { $label -like $_ }).Count -eq 0) { continue }
        $out = [Microsoft.HyperV.PowerShell.VMIntegrationComponent]::new()
        $out.Name = $label; $out.VMName = $one.name; $out.VMId = [guid]$one.id; $out.ComputerName = $env:COMPUTERNAME
        $out.Id = "Microsoft:$($one.id.ToUpperInvariant())\$($service[2])"
        $isKvp = $service[2] -eq $script:KvpId
        $out.Enabled = -not ($disabled -contains $service[2]) -and -not ($isKvp -and $mode -eq 'disabled' -and -not $one['kvpEnabledByHand'])
        $out.PrimaryOperationalStatus = if (-not $out.Enabled) { 'Disabled' } elseif ($isKvp -and $mode -eq 'nocontact') { 'NoContact' } else { 'Ok' }
        $out
      }
    }
  }
}

function Enable-VMIntegrationService {
  [CmdletBinding(DefaultParameterSetName = 'VMName', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 1)] [string[]]$VMName,
    [Parameter(ParameterSetName = 'VMName', Mandatory = $true, Position = 0)] [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0)] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 1, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(ParameterSetName = 'Object', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMIntegrationComponent[]]$VMIntegrationService,
    [switch]$Passthru
  )
  process {
    $targets = if ($VMIntegrationService) { $VMIntegrationService } else { @(Get-VMIntegrationService -VMName $VMName -Name $Name) }
    if (@($targets).Count -eq 0) { Stop-SimCall $PSCmdlet "No integration service named '$($Name -join ', ')' was found." 'ObjectNotFound' 'ObjectNotFound' ($Name -join ', ') }
    foreach ($service in $targets) {
      $serviceId = ($service.Id -split '\\')[-1]
      Use-SimState -Save {
        param($state)
        $vm = Find-SimVm $state $service.VMId $null
        $vm.disabledServices = @(@($vm['disabledServices']) | Where-Object { $_ -and $_ -ne $serviceId })
        if ($serviceId -eq $script:KvpId) { $vm.kvpEnabledByHand = $true }
      } | Out-Null
    }
  }
}

# ---- cmdlets: migration ------------------------------------------------------------------------

function Resolve-SimPeer([string]$Name) {
  # Another simulated host by computer name (short or FQDN): LABCTL_HYPERV_SIM_PEERS names a JSON
  # file { "hv02": "<its state directory>" }.
  $file = $env:LABCTL_HYPERV_SIM_PEERS
  if (-not $file -or -not (Test-Path -LiteralPath $file)) { return $null }
  $peers = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($file)) -AsHashtable
  $short = ($Name -split '\.')[0].ToLowerInvariant()
  foreach ($key in @($peers.Keys)) { if ($key.ToLowerInvariant() -eq $short) { return [string]$peers[$key] } }
  return $null
}

function Move-VM {
  # Live (running) or quick (off) migration to another simulated host. What stops it on a host stops
  # it here: migration off on either side, CredSSP from a remote session (no credentials to
  # delegate), Kerberos without constrained delegation (scenario noDelegation), a switch missing on
  # the destination, a disk the destination cannot see without -IncludeStorage.
  [CmdletBinding(DefaultParameterSetName = 'NameSingleDestination', SupportsShouldProcess = $true)]
  [OutputType([Microsoft.HyperV.PowerShell.VirtualMachine])]
  param(
    [Parameter(ParameterSetName = 'NameSingleDestination', Mandatory = $true, Position = 0)]
    [Parameter(ParameterSetName = 'NameSingleDestinationAndStorage', Mandatory = $true, Position = 0)] [string]$Name,
    [Parameter(ParameterSetName = 'VMSingleDestination', Mandatory = $true, Position = 0, ValueFromPipeline = $true)]
    [Parameter(ParameterSetName = 'VMSingleDestinationAndStorage', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine]$VM,
    [Parameter(Mandatory = $true, Position = 1)] [string]$DestinationHost,
    [Parameter(ParameterSetName = 'NameSingleDestinationAndStorage')] [Parameter(ParameterSetName = 'VMSingleDestinationAndStorage')] [switch]$IncludeStorage,
    [Parameter(ParameterSetName = 'NameSingleDestinationAndStorage', Mandatory = $true)] [Parameter(ParameterSetName = 'VMSingleDestinationAndStorage', Mandatory = $true)] [string]$DestinationStoragePath,
    [string]$VirtualMachinePath,
    [switch]$Passthru,
    [switch]$AsJob,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Move-VM'
  $peer = Resolve-SimPeer $DestinationHost
  if (-not $peer) { Stop-SimCall $PSCmdlet "Virtual machine migration operation failed at migration source. Failed to establish a connection with host '$DestinationHost': No such host is known. (0x80072AF9)." 'OperationFailed' 'ConnectionError' $DestinationHost }
  $source = Use-SimState { param($state) [pscustomobject]@{ host = (Get-SimVmHostData $state); vm = @(Resolve-SimVmArgument $state $PSCmdlet $(if ($VM) { @($VM) } else { $null }) $(if ($Name) { @($Name) } else { $null }))[0] } }
  $vmName = $source.vm.name
  if (-not $source.host.VirtualMachineMigrationEnabled) { Stop-SimCall $PSCmdlet "Virtual machine migration operation for '$vmName' failed at migration source '$env:COMPUTERNAME'. The Virtual Machine Management Service on this host is not configured for migration (Enable-VMMigration)." 'OperationFailed' 'InvalidOperation' $vmName }
  if ([int]$source.host.VirtualMachineMigrationAuthenticationType -eq 0) {
    Stop-SimCall $PSCmdlet "Virtual machine migration operation for '$vmName' failed at migration source '$env:COMPUTERNAME'. Failed to establish a connection with host '$DestinationHost': No credentials are available in the security package (0x8009030E)." 'OperationFailed' 'AuthenticationError' $vmName
  }
  if (Get-SimKnob 'noDelegation' $false) {
    Stop-SimCall $PSCmdlet "Virtual machine migration operation for '$vmName' failed at migration source '$env:COMPUTERNAME'. The Virtual Machine Management Service failed to authenticate the connection for a Virtual Machine migration at the source host: no suitable credentials available. Check that constrained delegation is configured for this host." 'OperationFailed' 'AuthenticationError' $vmName
  }
  $moved = Use-SimState -Dir $peer -Save {
    param($destination)
    $target = Get-SimVmHostData $destination
    if (-not $target.VirtualMachineMigrationEnabled -or [int]$target.VirtualMachineMigrationAuthenticationType -eq 0) {
      Stop-SimCall $PSCmdlet "The Virtual Machine Management Service on the destination host '$DestinationHost' has rejected a migration request for '$vmName': migration is not enabled with Kerberos there." 'OperationFailed' 'InvalidOperation' $vmName
    }
    foreach ($adapter in @($source.vm.adapters)) {
      if ($adapter.switch -and -not @($destination.switches | Where-Object { $_.name -eq $adapter.switch }).Count) {
        Stop-SimCall $PSCmdlet "Virtual machine migration operation for '$vmName' failed at migration destination '$DestinationHost'. Could not find Ethernet switch '$($adapter.switch)'." 'OperationFailed' 'ObjectNotFound' $vmName
      }
    }
    $disks = @()
    foreach ($disk in @($source.vm.disks)) {
      if ($IncludeStorage) {
        $newPath = Join-SimPath $DestinationStoragePath (($disk -split '\\')[-1])
        $to = ConvertTo-SimLocalPath $newPath $peer
        [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($to))
        [IO.File]::Copy((ConvertTo-SimLocalPath $disk), $to)
        $disks += $newPath
      } else {
        $seen = ConvertTo-SimLocalPath $disk $peer
        if (-not $seen -or -not (Test-Path -LiteralPath $seen)) {
          Stop-SimCall $PSCmdlet "Virtual machine migration operation for '$vmName' failed at migration destination '$DestinationHost'. The virtual hard disk '$disk' is not accessible from the destination; move it with -IncludeStorage or put it on shared storage." 'OperationFailed' 'ObjectNotFound' $vmName
        }
        $disks += $disk
      }
    }
    $record = [ordered]@{}
    foreach ($key in $source.vm.Keys) { $record[$key] = $source.vm[$key] }
    $record.disks = $disks
    [void]$destination.vms.Add($record)
    $record
  }
  Use-SimState -Save {
    param($state)
    $state.vms.Remove((Find-SimVm $state $source.vm.id $null))
    if ($IncludeStorage) { foreach ($disk in @($source.vm.disks)) { Remove-Item -LiteralPath (ConvertTo-SimLocalPath $disk) -Force } }
  } | Out-Null
  if ($Passthru) { ConvertTo-SimVm $moved }
}

# ---- cmdlets: register -------------------------------------------------------------------------

function Save-SimPlannedVm($Report) {
  # A change to the planned VM of a compatibility report is a change on the host (it is what
  # Import-VM registers), so it is written to the configuration file.
  $local = ConvertTo-SimLocalPath $Report.Path
  [IO.File]::WriteAllText($local, $script:VmcxTag + (ConvertTo-Json -InputObject $Report.Config -Compress -Depth 5) + "`n")
}

function New-SimReport($Config, [string]$Path, $State) {
  # A compatibility report for a configuration file: a missing switch, a missing disk.
  $report = [Microsoft.HyperV.PowerShell.VMCompatibilityReport]::new()
  $report.Path = $Path
  $report.OperationType = 'ImportVirtualMachine'
  $report.Config = $Config
  $vm = [Microsoft.HyperV.PowerShell.VirtualMachine]::new(); $vm.Name = $Config.name; $vm.Id = [guid]$Config.id; $vm.State = 'Off'
  $report.VM = $vm
  $problems = @()
  $index = 0
  foreach ($adapterData in @($Config.adapters)) {
    if ($adapterData.switch -and -not @($State.switches | Where-Object { $_.name -eq $adapterData.switch }).Count) {
      $adapter = [Microsoft.HyperV.PowerShell.VMNetworkAdapter]::new(); $adapter.Name = $adapterData.name; $adapter.VMName = $Config.name; $adapter.Index = $index; $adapter.SwitchName = $adapterData.switch
      $adapter | Add-Member -NotePropertyName LabctlReport -NotePropertyValue $report
      $problem = [Microsoft.HyperV.PowerShell.VMCompatibilityError]::new(); $problem.Message = "Could not find Ethernet switch '$($adapterData.switch)'."; $problem.MessageId = 33012; $problem.Source = $adapter
      $problems += $problem
    }
    $index++
  }
  $index = 0
  foreach ($disk in @($Config.disks)) {
    if (-not (Get-SimDisk $disk)) {
      $drive = [Microsoft.HyperV.PowerShell.HardDiskDrive]::new(); $drive.Name = "Hard Drive on SCSI controller number 0 at location $index"; $drive.VMName = $Config.name; $drive.Path = $disk; $drive.Index = $index
      $drive | Add-Member -NotePropertyName LabctlReport -NotePropertyValue $report
      $problem = [Microsoft.HyperV.PowerShell.VMCompatibilityError]::new(); $problem.Message = "Virtual hard disk file '$disk' not found."; $problem.MessageId = 40010; $problem.Source = $drive
      $problems += $problem
    }
    $index++
  }
  $report.Incompatibilities = $problems
  return $report
}

function Compare-VM {
  [CmdletBinding(DefaultParameterSetName = 'NameSingleDestination')]
  [OutputType([Microsoft.HyperV.PowerShell.VMCompatibilityReport])]
  param(
    [Parameter(ParameterSetName = 'Register', Mandatory = $true, Position = 0)] [string]$Path,
    [Parameter(ParameterSetName = 'Register', Position = 1)] [string]$SnapshotFilePath,
    [Parameter(ParameterSetName = 'Register', Position = 2)] [string]$VhdDestinationPath,
    [Parameter(ParameterSetName = 'Register')] [switch]$Register,
    [Parameter(ParameterSetName = 'Register')] [switch]$Copy,
    [Parameter(ParameterSetName = 'Register')] [switch]$GenerateNewId,
    [Parameter(ParameterSetName = 'CompatibilityReport', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMCompatibilityReport]$CompatibilityReport,
    [Parameter(ParameterSetName = 'NameSingleDestination', Mandatory = $true, Position = 0)] [string]$Name,
    [Parameter(ParameterSetName = 'NameSingleDestination', Mandatory = $true, Position = 1)] [string]$DestinationHost,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  if ($PSCmdlet.ParameterSetName -eq 'NameSingleDestination') { Stop-SimCall $PSCmdlet 'The Hyper-V simulator does not compare VMs for migration yet.' 'NotImplemented' 'NotImplemented' }
  if ($CompatibilityReport) {
    return (Use-SimState { param($state) New-SimReport $CompatibilityReport.Config $CompatibilityReport.Path $state })
  }
  $local = ConvertTo-SimLocalPath $Path
  if (-not $local -or -not (Test-Path -LiteralPath $local -PathType Leaf)) { Stop-SimCall $PSCmdlet "The system cannot find the file '$Path'." 'ObjectNotFound' 'ObjectNotFound' $Path }
  $config = Read-SimHeader $local $script:VmcxTag
  if (-not $config -or -not $config['name']) { Stop-SimCall $PSCmdlet "The file name at `"$Path`" is not in GUID format." 'InvalidParameter' 'InvalidArgument' $Path }
  if (-not $config['id']) { $config.id = [IO.Path]::GetFileNameWithoutExtension(($Path -split '\\')[-1]) }
  if (-not $config['adapters']) { $config.adapters = @(@{ name = 'Network Adapter'; mac = '00155D00AA01'; switch = $config['switch'] }) }
  $config.adapters = @($config.adapters); $config.disks = @($config['disks'])
  return (Use-SimState { param($state) New-SimReport $config $Path $state })
}

function Copy-SimChains {
  # Copies each disk chain (from its top down through its parents) into $Destination, parents
  # rewritten to the copies; returns the new top of each chain. A file shared by two chains is
  # copied once.
  param([string[]]$Tops, [string]$Destination)
  $copies = @{}
  foreach ($top in $Tops) {
    $chain = @()
    $current = $top
    while ($current) {
      $meta = Get-SimDisk $current
      if (-not $meta) { break }
      $chain += $current
      $current = if ($meta['parent']) { [string]$meta.parent } else { $null }
    }
    [array]::Reverse($chain)
    $parentCopy = $null
    foreach ($link in $chain) {
      $key = $link.ToLowerInvariant()
      if (-not $copies.ContainsKey($key)) {
        $meta = Get-SimDisk $link
        $copy = Join-SimPath $Destination (($link -split '\\')[-1])
        $header = @{ type = $meta.type; size = $meta.size; fileSize = $meta.fileSize }
        if ($parentCopy) { $header.parent = $parentCopy }
        Write-SimDisk $copy $header
        $copies[$key] = $copy
      }
      $parentCopy = $copies[$key]
    }
    $parentCopy
  }
}

function Export-VM {
  # Hyper-V's export layout: <Path>\<VM name>\Virtual Machines\<ID>.vmcx and
  # <Path>\<VM name>\Virtual Hard Disks\ with every disk of the VM's chains (parents included).
  # Checkpoints are not exported by the simulator.
  [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess = $true)]
  param(
    [Parameter(ParameterSetName = 'Name', Mandatory = $true, Position = 0)] [string[]]$Name,
    [Parameter(ParameterSetName = 'VMObject', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VirtualMachine[]]$VM,
    [Parameter(Mandatory = $true, Position = 1)] [string]$Path,
    [ValidateSet('CaptureCrashConsistentState', 'CaptureSavedState', 'CaptureDataConsistentState')] [string]$CaptureLiveState,
    [switch]$AsJob,
    [switch]$Passthru,
    [string[]]$ComputerName,
    [pscredential[]]$Credential
  )
  Invoke-SimFault $PSCmdlet 'Export-VM'
  $vms = Use-SimState { param($state) Resolve-SimVmArgument $state $PSCmdlet $VM $Name }
  foreach ($one in $vms) {
    $root = Join-SimPath $Path $one.name
    $localRoot = ConvertTo-SimLocalPath $root
    if (-not $localRoot) { Stop-SimCall $PSCmdlet "Failed to export the virtual machine '$($one.name)': '$Path' is not on a volume of this host." 'InvalidParameter' 'InvalidArgument' $Path }
    if (Test-Path -LiteralPath $localRoot) { Stop-SimCall $PSCmdlet "Failed to export the virtual machine '$($one.name)': the folder '$root' already exists." 'OperationFailed' 'ResourceExists' $root }
    $tops = @(Copy-SimChains -Tops @($one.disks) -Destination (Join-SimPath $root 'Virtual Hard Disks'))
    $config = Join-SimPath (Join-SimPath $root 'Virtual Machines') (([string]$one.id).ToUpperInvariant() + '.vmcx')
    $local = ConvertTo-SimLocalPath $config
    [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($local))
    $data = [ordered]@{ name = $one.name; id = $one.id; notes = [string]$one.notes; generation = $one.generation; memoryBytes = $one.memoryBytes; processors = $one['processors']; disks = $tops
      adapters = @($one.adapters | ForEach-Object { [ordered]@{ name = $_.name; mac = $_.mac; switch = $_.switch } }) }
    [IO.File]::WriteAllText($local, $script:VmcxTag + (ConvertTo-Json -InputObject $data -Compress -Depth 5) + "`n")
  }
}

function Import-VM {
  [CmdletBinding(DefaultParameterSetName = 'Register', SupportsShouldProcess = $true)]
  [OutputType([Microsoft.HyperV.PowerShell.VirtualMachine])]
  param(
    [Parameter(ParameterSetName = 'Register', Mandatory = $true, Position = 0)] [Parameter(ParameterSetName = 'Copy', Mandatory = $true, Position = 0)] [string]$Path,
    [Parameter(ParameterSetName = 'Register')] [switch]$Register,
    [Parameter(ParameterSetName = 'Copy', Position = 1)] [string]$VhdDestinationPath,
    [Parameter(ParameterSetName = 'Copy', Mandatory = $true)] [switch]$Copy,
    [Parameter(ParameterSetName = 'Copy')] [string]$VirtualMachinePath,
    [Parameter(ParameterSetName = 'Copy')] [string]$SnapshotFilePath,
    [Parameter(ParameterSetName = 'Copy')] [string]$SmartPagingFilePath,
    [Parameter(ParameterSetName = 'Copy')] [switch]$GenerateNewId,
    [Parameter(ParameterSetName = 'CompatibilityReport', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [Microsoft.HyperV.PowerShell.VMCompatibilityReport]$CompatibilityReport,
    [switch]$AsJob
  )
  if ($Copy) {
    # A copy: the configuration and every disk chain go to the destinations; the source stays.
    $source = Compare-VM -Path $Path -Register
    if (@($source.Incompatibilities).Count -gt 0) { Stop-SimCall $PSCmdlet "Unable to import virtual machine due to configuration errors. Please use Compare-VM to repair the virtual machine." 'OperationFailed' 'InvalidOperation' $Path }
    $copied = $source.Config
    if ($GenerateNewId) { $copied.id = [guid]::NewGuid().ToString() }
    $copied.disks = @(Copy-SimChains -Tops @($copied.disks) -Destination $(if ($VhdDestinationPath) { $VhdDestinationPath } else { Get-SimParent (Get-SimParent $Path) }))
    $vmRoot = if ($VirtualMachinePath) { $VirtualMachinePath } else { Get-SimParent (Get-SimParent $Path) }
    $newConfig = Join-SimPath (Join-SimPath $vmRoot 'Virtual Machines') (([string]$copied.id).ToUpperInvariant() + '.vmcx')
    $local = ConvertTo-SimLocalPath $newConfig
    [void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($local))
    [IO.File]::WriteAllText($local, $script:VmcxTag + (ConvertTo-Json -InputObject $copied -Compress -Depth 5) + "`n")
    $CompatibilityReport = Compare-VM -Path $newConfig -Register
  }
  if (-not $CompatibilityReport) { $CompatibilityReport = Compare-VM -Path $Path -Register }
  if (@($CompatibilityReport.Incompatibilities).Count -gt 0) {
    Stop-SimCall $PSCmdlet "Unable to import virtual machine due to configuration errors. Please use Compare-VM to repair the virtual machine." 'OperationFailed' 'InvalidOperation' $CompatibilityReport.Path
  }
  $config = $CompatibilityReport.Config
  $made = Use-SimState -Save {
    param($state)
    if (Find-SimVm $state $config.id $null) { Stop-SimCall $PSCmdlet "The operation cannot be performed because a virtual machine with the same identifier already exists." 'ObjectAlreadyExists' 'ResourceExists' $config.id }
    $vm = [ordered]@{
      name = $config.name; id = $config.id; state = 'Off'; notes = [string]$config['notes']
      generation = $(if ($config['generation']) { $config.generation } else { 2 }); memoryBytes = $(if ($config['memoryBytes']) { $config.memoryBytes } else { 2147483648 }); processors = $(if ($config['processors']) { $config.processors } else { 1 })
      path = (Get-SimParent (Get-SimParent $CompatibilityReport.Path)); config = $CompatibilityReport.Path; disks = @($config.disks)
      adapters = @($config.adapters | ForEach-Object { [ordered]@{ name = $_.name; mac = $_.mac; dynamicMac = $false; switch = $_.switch; vlan = $null } })
      checkpoints = @()
    }
    [void]$state.vms.Add($vm)
    $vm
  }
  ConvertTo-SimVm $made
}

