@{
  # Simulator of the three ActiveDirectory cmdlets `labctl delegation script` uses, over
  # <state>/ad.json. For running that script under a real pwsh in tests; not Active Directory.
  RootModule        = 'ActiveDirectory.psm1'
  ModuleVersion     = '1.0.0.0'
  GUID              = '0d8f4b1e-6a77-4c1e-9b8e-5f2f0b7b2a41'
  Author            = 'labctl'
  Description       = 'labctl simulator of Get-ADComputer, Set-ADObject and Set-ADAccountControl; for tests.'
  PowerShellVersion = '7.0'
  FunctionsToExport = @('Get-ADComputer', 'Set-ADObject', 'Set-ADAccountControl')
  CmdletsToExport   = @()
  VariablesToExport = @()
  AliasesToExport   = @()
}
