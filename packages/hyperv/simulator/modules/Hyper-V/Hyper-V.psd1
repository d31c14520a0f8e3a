@{
  # The Hyper-V simulator (see Hyper-V.psm1): the cmdlets labctl's scripts call, with the parameters
  # of the Hyper-V module of Windows Server 2019/2022. Not Hyper-V.
  RootModule        = 'Hyper-V.psm1'
  ModuleVersion     = '2.0.0.0'
  GUID              = 'af4bddd0-8583-4ff2-84b2-a33f5c8de8a7'
  Author            = 'labctl'
  Description       = 'labctl Hyper-V simulator: real cmdlet signatures over a state directory; for tests, not Hyper-V.'
  PowerShellVersion = '7.0'
  CompatiblePSEditions = @('Core')
  FunctionsToExport = @('Get-VM', 'New-VM', 'Set-VM', 'Remove-VM', 'Start-VM', 'Stop-VM', 'Checkpoint-VM', 'Get-VMSnapshot', 'Get-VMHost', 'Set-VMHost', 'Enable-VMMigration', 'Get-VMMigrationNetwork', 'Get-VMSwitch', 'Get-VHD', 'New-VHD', 'Convert-VHD', 'Get-VMHardDiskDrive', 'Add-VMHardDiskDrive', 'Set-VMHardDiskDrive', 'Get-VMNetworkAdapter', 'Set-VMNetworkAdapter', 'Set-VMNetworkAdapterVlan', 'Connect-VMNetworkAdapter', 'Disconnect-VMNetworkAdapter', 'Set-VMFirmware', 'Get-VMIntegrationService', 'Enable-VMIntegrationService', 'Restore-VMSnapshot', 'Remove-VMSnapshot', 'Compare-VM', 'Import-VM', 'Export-VM', 'Move-VM')
  AliasesToExport   = @('Get-VMCheckpoint')
  CmdletsToExport   = @()
  VariablesToExport = @()
}
