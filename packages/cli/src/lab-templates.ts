/**
 * The commented lab files `labctl init` writes: every key a new lab needs, the rest commented out
 * with what it does, so the file teaches the format (docs/lab-file.md has every key).
 */
export const LAB_TEMPLATES = {
  libvirt: (lab: string) => `# labctl lab file (docs/lab-file.md). Check it with: labctl create --dry-run --offline
lab: ${lab}                        # part of every VM's name in libvirt metadata and MAC addresses
provider: libvirt
# uri: qemu:///system              # or qemu+ssh://root@kvm01/system; several hosts: hosts: (docs/hosts.md)
# concurrency: 4                   # VMs created/started/destroyed at the same time
# timeout: 300                     # seconds create and ip --wait wait for addresses and SSH

defaults:                          # every group starts from these; a group's own settings win
  golden: images/golden.qcow2      # .qcow2, .vhd, .vhdx, .raw: read in place, never written
  clone: linked                    # linked: an overlay on the golden image; full: a copy
  cpus: 1
  memory: 1G
  network: default                 # a libvirt network, or bridge:br0
  ssh:
    user: root
    keyFile: ~/.ssh/id_ed25519     # ~ is your home; relative paths are relative to this file

groups:
  web:
    count: 2
    # name: "web-{nn}"             # {group}, {n}, {nn}, {nnn}
    # vars: { http_port: 8080 }    # Ansible host vars for the group's VMs
  # db: { count: 1, memory: 2G, cpus: 2 }

# inventory:
#   vars: { ansible_python_interpreter: /usr/bin/python3 }
`,
  hyperv: (lab: string) => `# labctl lab file (docs/lab-file.md, docs/hyperv.md). Check it with: labctl create --dry-run
lab: ${lab}
provider: hyperv

defaults:
  golden: 'D:\\Golden\\centos7.vhdx' # as the Hyper-V host sees it; only ever read
  clone: linked                    # a differencing disk on the golden disk; full: a copy
  network: LabSwitch               # the virtual switch
  cpus: 2
  memory: 2G
  # generation: 2                  # a .vhd golden disk means 1
  # vlan: 20

groups:
  web:
    count: 2

hosts:
  - name: hv01
    address: admin@hv01.lab.example  # user@host[:port] over SSH, or local (PowerShell on this machine)
    # path: 'D:\\Labs'               # disks and VM folders go to D:\\Labs\\<lab>\\
    # concurrency: 2

hyperv:
  knownHosts: ~/.ssh/known_hosts   # the hosts' keys are pinned: unknown or changed keys are refused
  # identityFile: ~/.ssh/id_ed25519
  # shell: powershell              # or pwsh
`,
} as const;

export type TemplateProvider = keyof typeof LAB_TEMPLATES;
