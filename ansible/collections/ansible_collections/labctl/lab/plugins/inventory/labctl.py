# -*- coding: utf-8 -*-
# The labctl lab as an Ansible inventory, read from the files labctl documents (docs/state.md,
# docs/lab-file.md) so that Ansible starts no labctl process. It builds what `labctl inventory`
# builds (packages/inventory/src/model.ts); the collection's test compares the two through
# ansible-inventory on the same labs.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: labctl
short_description: The VMs of a labctl lab
description:
  - Reads a labctl lab's C(.labctl/state.json) and C(labctl.yaml) and gives the hosts, groups and
    vars that C(labctl inventory) gives, with each VM's SSH host keys pinned.
  - Host keys go to C(<lab_dir>/.labctl/known_hosts) (written only when they changed); every host's
    ssh checks them strictly under the VM's name (HostKeyAlias).
  - VMs without a usable address, or being created or destroyed, are left out; stopped VMs are in
    the group C(labctl_stopped) instead of their own.
  - The configuration file's name must end in C(labctl.yml) or C(labctl.yaml).
options:
  plugin:
    description: Marks this file as a source for this plugin.
    required: true
    choices: ['labctl.lab.labctl', 'labctl']
  lab_dir:
    description:
      - The lab directory (the one holding C(labctl.yaml) and C(.labctl/state.json)).
      - Relative to this file's directory (not the current one); C(~) is the home directory. Default
        this file's directory.
    type: str
extends_documentation_fragment:
  - constructed
"""

EXAMPLES = r"""
# lab.labctl.yml
plugin: labctl.lab.labctl
lab_dir: ~/labs/k8s
keyed_groups:
  - key: labctl_state
    prefix: state
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"
"""

import ipaddress
import json
import os
import re
import tempfile

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

STATE_FILE = os.path.join('.labctl', 'state.json')
KNOWN_HOSTS_FILE = os.path.join('.labctl', 'known_hosts')
LAB_FILE = 'labctl.yaml'
STATE_MAX_BYTES = 64 * 1024 * 1024
STOPPED_GROUP = 'labctl_stopped'
RESERVED_GROUPS = ('all', 'ungrouped', STOPPED_GROUP)
GONE_STATES = ('missing', 'destroying', 'planned')
STOPPED_STATES = ('stopped', 'paused-critical')
VAR_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
HOST_NAME = re.compile(r'^\w[\w.-]*$')
HOST_KEY_LINE = re.compile(r'^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,2}(\s.*)?$')
SAFE_WORD = re.compile(r'^[A-Za-z0-9_./:@%+,=-]+$')


def safe_group_name(name):
    """Ansible's TRANSFORM_INVALID_GROUP_CHARS=always (web-1 -> web_1), as labctl writes groups."""
    return re.sub(r'^\d|[^\w]', '_', name)


def comment_text(value):
    return re.sub('[\u0000-\u001f\u007f-\u009f\u2028\u2029]', '?', value)


def natural_key(value):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', value)]


def classify(value):
    """The address and its rank (routable IPv4, IPv6, then loopback), or None when unusable."""
    bare = re.sub(r'%.*$', '', re.sub(r'/\d+$', '', str(value).strip()))
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if address.version == 4:
        if bare == '0.0.0.0' or address in ipaddress.ip_network('169.254.0.0/16'):
            return None
        if int(bare.split('.')[0]) >= 224:
            return None
    else:
        if address.is_unspecified or address in ipaddress.ip_network('fe80::/10') or address.is_multicast:
            return None
    loopback = 2 if bare == '::1' or bare.startswith('127.') else 0
    return bare, (0 if address.version == 4 else 1) + loopback


def rank_addresses(values):
    seen, usable = set(), []
    for value in values:
        classified = classify(value)
        if classified is None or classified[0] in seen:
            continue
        seen.add(classified[0])
        usable.append(classified)
    order = sorted(range(len(usable)), key=lambda i: (usable[i][1], i))
    return [usable[i][0] for i in order]


def ssh_common_args(known_hosts_file):
    """The pinned-key options, one string that Ansible splits with shlex (labctl's sshCommonArgs)."""
    if '"' in known_hosts_file or '\n' in known_hosts_file:
        raise AnsibleParserError('cannot point ssh at %r: the path contains a double quote or newline' % known_hosts_file)
    escaped = known_hosts_file.replace('%', '%%')
    value = '"%s"' % escaped if re.search(r'\s', known_hosts_file) else escaped
    option = 'UserKnownHostsFile=' + value
    word = option if SAFE_WORD.match(option) else "'" + option.replace("'", "'\"'\"'") + "'"
    return '-o %s -o StrictHostKeyChecking=yes' % word


def with_pinning(user_args, known_hosts_file):
    ours = ssh_common_args(known_hosts_file)
    theirs = user_args.strip()
    if theirs == '' or ours in theirs:
        return theirs or ours
    return '%s %s' % (theirs, ours)


def resolve_path(value, base):
    if value == '~' or value.startswith('~/'):
        return os.path.normpath(os.path.join(os.path.expanduser('~'), value[2:]))
    if os.path.isabs(value) or re.match(r'^[A-Za-z]:[\\/]|^\\\\', value):
        return value
    return os.path.normpath(os.path.join(base, value))


def build(state, spec, known_hosts_file, lab_dir):
    """labctl's inventory model (packages/inventory/src/model.ts): groups, hosts, known_hosts lines."""
    lab = state['lab']
    root_name = 'labctl_' + safe_group_name(lab)
    groups = {}

    def group(name):
        if name not in groups:
            groups[name] = {'hosts': [], 'children': [], 'vars': {}}
        return groups[name]

    def group_name(raw, where):
        safe = safe_group_name(raw)
        if safe in RESERVED_GROUPS or safe == root_name:
            raise AnsibleParserError('%s: group name "%s" is reserved' % (where, raw))
        return safe

    def checked_vars(values):
        return dict((k, v) for k, v in (values or {}).items() if VAR_NAME.match(k))

    root = group(root_name)
    root['vars'] = checked_vars((spec.get('inventory') or {}).get('vars'))
    hosts = []
    known_hosts = []
    spec_groups = spec.get('groups') or {}
    defaults_ssh = (spec.get('defaults') or {}).get('ssh') or {}
    vms = sorted(state.get('vms') or [], key=lambda vm: (natural_key(vm['group']), natural_key(vm['name'])))
    for vm in vms:
        vm_ssh = vm.get('ssh') or {}
        assigned = [vm['assignedAddress']] if vm.get('assignedAddress') else []
        ranked = rank_addresses(list(vm.get('addresses') or []) + assigned)
        vm_state = vm.get('state') or 'unknown'
        if vm_state in GONE_STATES or not HOST_NAME.match(vm['name']) or not ranked:
            continue
        ssh = dict(defaults_ssh)
        ssh.update((spec_groups.get(vm['group']) or {}).get('ssh') or {})
        port = vm_ssh.get('port', ssh.get('port'))
        user = vm_ssh.get('user', ssh.get('user'))
        key_file = vm_ssh.get('keyFile') or (resolve_path(ssh['keyFile'], lab_dir) if ssh.get('keyFile') else None)
        proxy_jump = vm_ssh.get('proxyJump') or ssh.get('proxyJump')
        hostvars = {'ansible_host': ranked[0]}
        if port is not None:
            hostvars['ansible_port'] = port
        if user is not None:
            hostvars['ansible_user'] = user
        if key_file is not None:
            hostvars['ansible_ssh_private_key_file'] = key_file
        hostvars['labctl_state'] = vm_state
        hostvars.update(checked_vars(vm.get('vars')))
        if isinstance(hostvars.get('ansible_ssh_common_args'), str):
            hostvars['ansible_ssh_common_args'] = with_pinning(hostvars['ansible_ssh_common_args'], known_hosts_file)
        name = group_name(vm['group'], 'VM ' + vm['name'])
        home = STOPPED_GROUP if vm_state in STOPPED_STATES else name
        group(home)['hosts'].append(vm['name'])
        # Keys pinned under the VM's name, never its address (an address another VM had is no
        # changed key); the jump host after any ProxyJump of the user's own args (ssh takes the first).
        hostvars['ansible_ssh_extra_args'] = '-o HostKeyAlias=%s%s' % (
            vm['name'], ' -o ProxyJump=' + proxy_jump if proxy_jump else '')
        hosts.append((vm['name'], hostvars))
        for line in vm_ssh.get('hostKeys') or []:
            if HOST_KEY_LINE.match(line.strip()):
                key_type, blob = line.strip().split()[:2]
                known_hosts.append('%s %s %s' % (vm['name'], key_type, blob))

    sources = [(n, g, 'labctl.yaml groups.' + n) for n, g in spec_groups.items()]
    sources += [(n, g, 'labctl.yaml inventory.groups.' + n)
                for n, g in ((spec.get('inventory') or {}).get('groups') or {}).items()]
    for raw, source, where in sources:
        draft = group(group_name(raw, where))
        draft['vars'].update(checked_vars((source or {}).get('vars')))
        if isinstance(draft['vars'].get('ansible_ssh_common_args'), str):
            draft['vars']['ansible_ssh_common_args'] = with_pinning(draft['vars']['ansible_ssh_common_args'],
                                                                    known_hosts_file)
        for child in (source or {}).get('children') or []:
            child_name = group_name(child, where + '.children')
            if child_name == group_name(raw, where):
                raise AnsibleParserError('%s: group "%s" lists itself as a child' % (where, raw))
            group(child_name)
            if child_name not in draft['children']:
                draft['children'].append(child_name)
    check_cycles(groups)

    root['vars']['labctl_lab'] = lab
    user_args = root['vars'].get('ansible_ssh_common_args')
    root['vars']['ansible_ssh_common_args'] = (
        with_pinning(user_args, known_hosts_file) if isinstance(user_args, str) else ssh_common_args(known_hosts_file))
    for name in sorted(n for n in groups if n != root_name):
        root['children'].append(name)
    return root_name, groups, hosts, known_hosts


def check_cycles(groups):
    done, visiting = set(), set()

    def visit(name, path):
        if name in done:
            return
        if name in visiting:
            raise AnsibleParserError('groups form a cycle: ' + ' -> '.join(path + [name]))
        visiting.add(name)
        for child in groups.get(name, {}).get('children', []):
            visit(child, path + [name])
        visiting.discard(name)
        done.add(name)

    for name in list(groups):
        visit(name, [])


def read_text(path, what, limit, missing_ok=False):
    try:
        if not os.path.isfile(path):
            if missing_ok and not os.path.lexists(path):
                return None
            raise AnsibleParserError('%s %s is not a regular file' % (what, path))
        if os.path.getsize(path) > limit:
            raise AnsibleParserError('%s %s is larger than %d bytes' % (what, path, limit))
        with open(path, 'r', encoding='utf-8') as handle:
            return handle.read()
    except OSError as error:
        raise AnsibleParserError('cannot read %s %s: %s' % (what, path, error))


def write_if_changed(path, text):
    """known_hosts, atomically and only when it changed (as labctl inventory does)."""
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            if handle.read() == text:
                return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix='.known_hosts.', dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = 'labctl.lab.labctl'

    def verify_file(self, path):
        # labctl.yaml itself is the lab file, not a plugin configuration.
        return (super(InventoryModule, self).verify_file(path)
                and path.endswith(('labctl.yml', 'labctl.yaml'))
                and os.path.basename(path) != LAB_FILE)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        base = os.path.dirname(os.path.abspath(path))
        lab_dir = os.path.expanduser(self.get_option('lab_dir') or base)
        lab_dir = os.path.normpath(os.path.join(base, lab_dir))
        state_text = read_text(os.path.join(lab_dir, STATE_FILE), 'state file', STATE_MAX_BYTES, missing_ok=True)
        if state_text is None:
            raise AnsibleParserError('no lab in %s: it has no .labctl/state.json (create VMs with labctl create)' % lab_dir)
        try:
            state = json.loads(state_text)
        except ValueError as error:
            raise AnsibleParserError('%s: not JSON: %s' % (os.path.join(lab_dir, STATE_FILE), error))
        if not isinstance(state, dict) or state.get('version') != 1 or not isinstance(state.get('lab'), str) \
                or not isinstance(state.get('vms', []), list):
            raise AnsibleParserError('%s is not a labctl state of version 1 (docs/state.md)' % os.path.join(lab_dir, STATE_FILE))
        lab_text = read_text(os.path.join(lab_dir, LAB_FILE), 'lab file', 1024 * 1024, missing_ok=True)
        spec = (yaml.safe_load(lab_text) if lab_text else None) or {}
        if not isinstance(spec, dict):
            raise AnsibleParserError('%s: not a mapping' % os.path.join(lab_dir, LAB_FILE))

        known_hosts_file = os.path.join(lab_dir, KNOWN_HOSTS_FILE)
        root, groups, hosts, known_hosts = build(state, spec, known_hosts_file, lab_dir)
        write_if_changed(known_hosts_file, '# known_hosts written by labctl inventory for lab "%s": the recorded host keys of its VMs.\n%s' % (
            comment_text(state['lab']), ''.join(line + '\n' for line in known_hosts)))

        for name in groups:
            self.inventory.add_group(name)
        for name, body in groups.items():
            for child in body['children']:
                self.inventory.add_child(name, child)
            for key, value in body['vars'].items():
                self.inventory.set_variable(name, key, wrap_var(value))
        host_groups = dict((host, name) for name, body in groups.items() for host in body['hosts'])
        strict = self.get_option('strict')
        for host, hostvars in hosts:
            self.inventory.add_host(host, group=host_groups[host])
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, wrap_var(value))
            combined = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option('compose'), combined, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), combined, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), combined, host, strict=strict)
