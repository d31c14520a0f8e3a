@{
  # Windows parts the scripts read that PowerShell on Linux lacks (see LabctlWindowsSim.psm1). For tests.
  RootModule        = 'LabctlWindowsSim.psm1'
  ModuleVersion     = '1.0.0'
  GUID              = '3f0e0c55-7f38-4f55-a7d4-4b0b6a0d6c11'
  Author            = 'labctl'
  Description       = 'labctl simulator of Get-CimInstance (Win32_OperatingSystem, Win32_Volume) and Get-Acl; for tests.'
  PowerShellVersion = '7.0'
  FunctionsToExport = @('Get-CimInstance', 'Get-Acl')
  CmdletsToExport   = @()
  VariablesToExport = @()
  AliasesToExport   = @()
}
