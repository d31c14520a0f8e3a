import type { ScriptParts } from './common.js';

/**
 * Live migration with Kerberos on this host (what `labctl delegation apply --configure-hosts` does
 * after the LDAP part): reads Get-VMHost and, only when needed and only when `apply` is true, runs
 * Enable-VMMigration and Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos. With
 * `apply` false it changes nothing and reports what it would do (plan and verify).
 *
 * Input: `{ "apply": true|false }`. Output: the settings before and after, and one step per setting
 * with `needed`, `changed`, `ok` and an error record. A failing step does not stop the other one.
 * The authentication type is emitted as its name (`.ToString()`: CredSSP or Kerberos), because 5.1
 * serializes the enum as a number (CredSSP=0, Kerberos=1) and 7 as a number or, with
 * -EnumsAsStrings, a name. Enable-VMMigration only sets VirtualMachineMigrationEnabled; it adds no
 * migration network, so UseAnyNetworkForMigration and the migration networks are reported too.
 */
export const configureMigration: ScriptParts = {
  name: 'configure_migration',
  synopsis:
    'Reads the live-migration settings; with apply, enables live migration and sets Kerberos authentication where needed.',
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $apply = [bool]$In.apply
  $before = Get-LabctlMigrationSettings
  $steps = @(
    [ordered]@{ setting = 'migrationEnabled'; from = $before.migrationEnabled; to = $true; needed = (-not $before.migrationEnabled); changed = $false; ok = $true; error = $null },
    [ordered]@{ setting = 'authenticationType'; from = $before.authenticationType; to = 'Kerberos'; needed = ($before.authenticationType -ne 'Kerberos'); changed = $false; ok = $true; error = $null }
  )
  if (-not $apply) {
    return [ordered]@{ applied = $false; before = $before; after = $before; steps = $steps }
  }
  foreach ($step in $steps) {
    if (-not $step.needed) { continue }
    try {
      if ($step.setting -eq 'migrationEnabled') {
        Hyper-V\Enable-VMMigration
      } else {
        Hyper-V\Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos
      }
      $step.changed = $true
    } catch {
      $step.ok = $false
      $step.error = ConvertTo-LabctlError -Record $_
    }
  }
  $after = Get-LabctlMigrationSettings
  foreach ($step in $steps) {
    if (-not $step.ok) { continue }
    $now = $after[$step.setting]
    if ([string]$now -ne [string]$step.to) {
      $step.ok = $false
      $step.error = [ordered]@{
        message  = ('{0} is {1} after the change, expected {2}' -f $step.setting, $now, $step.to)
        type     = 'labctl.SettingNotApplied'
        fqid     = 'SettingNotApplied'
        category = 'InvalidResult'
      }
    }
  }
  return [ordered]@{ applied = $true; before = $before; after = $after; steps = $steps }
}
`,
};
