import type { ScriptParts } from './common.js';

/**
 * Copies one stopped VM's disk to a new file on the host (template capture): `Convert-VHD` of the
 * disk the VM writes to (its chain merged into one standalone dynamic disk of the output's format),
 * or, without flatten, a plain copy of that disk (still a child of the same parent). The VM's chain
 * and its parents are only read. The copy is made under a temporary name and renamed at the end,
 * so an interrupted run never leaves a half disk under the asked name; a re-run starts over.
 */
export const copyDisk: ScriptParts = {
  name: 'copy_disk',
  synopsis: "Copies a stopped VM's disk (merged into one standalone disk) to a new file.",
  body: String.raw`
function Invoke-LabctlOperation {
  param($In)
  $vm = Find-LabctlVm -All @(Hyper-V\Get-VM) -Id $In.vm.id -Name $In.vm.name
  if (-not $vm) { throw "the VM does not exist on this host" }
  $state = $vm.State.ToString()
  if ($state -ne 'Off') { throw "the VM is $state; its disk would be copied while it writes: stop it first" }
  $marker = Get-LabctlMarker -Vm $vm
  $seed = if ($marker -and $marker.seed) { [string]$marker.seed } else { '' }
  $drive = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path -and -not ($seed -and (Test-LabctlSamePath ([string]$_.Path) $seed)) }) | Select-Object -First 1
  if (-not $drive) { throw 'the VM has no disk' }
  $source = [string]$drive.Path
  $output = [string]$In.output
  foreach ($guarded in @($source) + @($In.protect)) {
    if ($guarded -and (Test-LabctlSamePath $output ([string]$guarded))) { throw "refusing to write over $($output): it is the VM's disk or one of its parents" }
  }
  if (Test-Path -LiteralPath $output) {
    if (-not $In.overwrite) { throw "$output already exists" }
    Remove-Item -LiteralPath $output -Force
  }
  $extension = [IO.Path]::GetExtension($output)
  $partial = $output.Substring(0, $output.Length - $extension.Length) + '.labctl-partial' + $extension
  if (Test-Path -LiteralPath $partial) { Remove-Item -LiteralPath $partial -Force }
  try {
    if ($In.flatten) { Hyper-V\Convert-VHD -Path $source -DestinationPath $partial -VHDType Dynamic }
    else { Copy-Item -LiteralPath $source -Destination $partial }
    Move-Item -LiteralPath $partial -Destination $output
  } catch {
    if (Test-Path -LiteralPath $partial) { Remove-Item -LiteralPath $partial -Force -ErrorAction SilentlyContinue }
    throw
  }
  return [ordered]@{
    path = $output
    source = $source
    bytes = (Get-Item -LiteralPath $output).Length
    sha256 = (Get-FileHash -LiteralPath $output -Algorithm SHA256).Hash.ToLowerInvariant()
  }
}
`,
};
