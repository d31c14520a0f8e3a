# Simulator of the ActiveDirectory cmdlets `labctl delegation script` calls, with their documented
# parameters, over a JSON directory in the simulated host's state directory (ad.json):
#   { "computers": { "HV01": { "DistinguishedName": "CN=HV01,...", "DNSHostName": "hv01.lab.example",
#       "msDS-AllowedToDelegateTo": [...], "TrustedForDelegation": false, "TrustedToAuthForDelegation": false } } }
# Multi-valued attributes compare case-insensitively, as in AD; adding a value that is there, or
# removing one that is not, fails as it does against a domain controller.
Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'
$script:File = Join-Path $env:LABCTL_HYPERV_SIM 'ad.json'

function Read-SimDirectory { ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($script:File)) -AsHashtable }
function Save-SimDirectory($Directory) { [IO.File]::WriteAllText($script:File, (ConvertTo-Json -InputObject $Directory -Depth 6)) }

function Find-SimComputer($Directory, [string]$Identity) {
  foreach ($name in @($Directory.computers.Keys)) {
    $entry = $Directory.computers[$name]
    if ($name -eq $Identity -or $entry.DistinguishedName -eq $Identity -or "$name`$" -eq $Identity) { return $entry }
  }
  throw [Management.Automation.ItemNotFoundException]::new("Cannot find an object with identity: '$Identity' under: 'DC=lab,DC=example'.")
}

function Get-ADComputer {
  [CmdletBinding(DefaultParameterSetName = 'Identity')]
  param(
    [Parameter(ParameterSetName = 'Identity', Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [string]$Identity,
    [Parameter(ParameterSetName = 'Filter', Mandatory = $true)] [string]$Filter,
    [Alias('Property')] [string[]]$Properties,
    [string]$Server,
    [pscredential]$Credential
  )
  if ($PSCmdlet.ParameterSetName -eq 'Filter') { throw 'The ActiveDirectory simulator supports -Identity only.' }
  $entry = Find-SimComputer (Read-SimDirectory) $Identity
  $out = [ordered]@{ Name = ($entry.DistinguishedName -replace '^CN=([^,]+),.*$', '$1'); DistinguishedName = $entry.DistinguishedName; DNSHostName = $entry['DNSHostName']; Enabled = $true }
  foreach ($property in @($Properties)) {
    if (-not $property) { continue }
    $value = $entry[$property]
    $out[$property] = if ($property -eq 'msDS-AllowedToDelegateTo') { [string[]]@($value | Where-Object { $_ }) } else { $value }
  }
  [pscustomobject]$out
}

function Set-ADObject {
  [CmdletBinding(SupportsShouldProcess = $true)]
  param(
    [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [string]$Identity,
    [hashtable]$Add,
    [hashtable]$Remove,
    [hashtable]$Replace,
    [string[]]$Clear,
    [string]$Server,
    [pscredential]$Credential
  )
  $directory = Read-SimDirectory
  $entry = Find-SimComputer $directory $Identity
  foreach ($attribute in @(if ($Add) { $Add.Keys })) {
    $present = [Collections.Generic.List[string]]@($entry[$attribute] | Where-Object { $_ })
    foreach ($value in @($Add[$attribute])) {
      if ($present -contains $value) { throw [InvalidOperationException]::new("The specified value already exists: $attribute=$value") }
      $present.Add($value)
    }
    $entry[$attribute] = @($present)
  }
  foreach ($attribute in @(if ($Remove) { $Remove.Keys })) {
    $present = @($entry[$attribute] | Where-Object { $_ })
    foreach ($value in @($Remove[$attribute])) {
      if ($present -notcontains $value) { throw [InvalidOperationException]::new("The attribute value does not exist: $attribute=$value") }
      $present = @($present | Where-Object { $_ -ne $value })
    }
    $entry[$attribute] = @($present)
  }
  Save-SimDirectory $directory
}

function Set-ADAccountControl {
  [CmdletBinding(SupportsShouldProcess = $true)]
  param(
    [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true)] [string]$Identity,
    [Nullable[bool]]$TrustedForDelegation,
    [Nullable[bool]]$TrustedToAuthForDelegation,
    [string]$Server,
    [pscredential]$Credential
  )
  $directory = Read-SimDirectory
  $entry = Find-SimComputer $directory $Identity
  if ($null -ne $TrustedForDelegation) { $entry.TrustedForDelegation = [bool]$TrustedForDelegation }
  if ($null -ne $TrustedToAuthForDelegation) { $entry.TrustedToAuthForDelegation = [bool]$TrustedToAuthForDelegation }
  Save-SimDirectory $directory
}
