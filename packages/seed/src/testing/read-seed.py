"""cloud-init's own code reads a NoCloud seed directory, as it does at boot (test helper).

  python3 read-seed.py SEED_DIR WORK_DIR  ->  JSON on stdout

Runs cloud-init's DataSourceNoCloud against SEED_DIR (placed as the seed directory
/var/lib/cloud/seed/nocloud of a test root WORK_DIR), validates the user-data against cloud-init's
schema, and renders the network-config for a RHEL-family and a Debian/Ubuntu guest (sysconfig
ifcfg files and netplan), so the tests see what cloud-init would write into the guest.
"""
import json
import os
import shutil
import sys

from cloudinit import distros, helpers, settings, util
from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_schema
from cloudinit.net import netplan, network_state, sysconfig
from cloudinit.sources import DataSourceNoCloud

seed, work = sys.argv[1], sys.argv[2]
cloud_dir = os.path.join(work, "var/lib/cloud")
nocloud = os.path.join(cloud_dir, "seed/nocloud")
os.makedirs(os.path.dirname(nocloud), exist_ok=True)
shutil.copytree(seed, nocloud)

paths = helpers.Paths({"cloud_dir": cloud_dir, "run_dir": os.path.join(work, "run")})
sys_cfg = {"datasource": {"NoCloud": {"fs_label": None}}}
distro = distros.fetch("rhel")("rhel", {}, paths)
ds = DataSourceNoCloud.DataSourceNoCloud(sys_cfg, distro, paths)
found = ds.get_data()
out = {"found": bool(found)}
if found:
    out["metadata"] = ds.metadata
    out["hostname"] = ds.get_hostname().hostname
    out["instance_id"] = ds.get_instance_id()
    raw = ds.get_userdata_raw()
    raw = raw.decode() if isinstance(raw, bytes) else raw
    out["user_data_header"] = raw.splitlines()[0]
    config = util.load_yaml(raw)
    out["user_data"] = config
    try:
        validate_cloudconfig_schema(config, get_schema(), strict=True)
        out["schema_errors"] = []
    except SchemaValidationError as err:
        out["schema_errors"] = [f"{path}: {msg}" for path, msg in err.schema_errors]
    netcfg = ds.network_config
    out["network_config"] = netcfg
    state = network_state.parse_net_config_data(netcfg)
    rendered = {}
    for name, renderer in (("sysconfig", sysconfig.Renderer(distro.renderer_configs["sysconfig"])), ("netplan", netplan.Renderer({"netplan_path": "etc/netplan/50-cloud-init.yaml"}))):
        target = os.path.join(work, "render-" + name)
        renderer.render_network_state(state, target=target)
        for root, _, files in os.walk(target):
            for f in files:
                p = os.path.join(root, f)
                rendered[os.path.relpath(p, work)] = open(p).read()
    out["rendered"] = rendered
print(json.dumps(out, default=str))
