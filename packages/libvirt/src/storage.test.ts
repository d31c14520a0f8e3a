import { describe, expect, it } from 'vitest';
import { parsePoolTarget, parseVolumeXml, volumeXml } from './storage.js';

const GOLDEN = `<volume type='file'>
  <name>golden.vhd</name>
  <key>/var/lib/libvirt/golden/golden.vhd</key>
  <capacity unit='bytes'>67108864</capacity>
  <allocation unit='bytes'>9637888</allocation>
  <target>
    <path>/var/lib/libvirt/golden/golden.vhd</path>
    <format type='vpc'/>
    <permissions>
      <mode>0444</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </target>
</volume>`;

const OVERLAY = `<volume type='file'>
  <name>vm-01.qcow2</name>
  <capacity unit='bytes'>67108864</capacity>
  <target>
    <path>/var/lib/libvirt/images/vm-01.qcow2</path>
    <format type='qcow2'/>
    <permissions><mode>0600</mode></permissions>
  </target>
  <backingStore>
    <path>/var/lib/libvirt/golden/golden.vhd</path>
    <format type='vpc'/>
    <permissions><mode>0444</mode></permissions>
  </backingStore>
</volume>`;

describe('storage pool XML', () => {
  it("reads a volume: path, format libvirt probed, capacity, mode (not the backing store's)", () => {
    expect(parseVolumeXml(GOLDEN)).toEqual({
      path: '/var/lib/libvirt/golden/golden.vhd',
      format: 'vpc',
      capacity: 67108864,
      mode: 0o444,
    });
    expect(parseVolumeXml(OVERLAY)).toEqual({
      path: '/var/lib/libvirt/images/vm-01.qcow2',
      format: 'qcow2',
      capacity: 67108864,
      mode: 0o600,
    });
  });

  it("reads a pool's target directory", () => {
    expect(
      parsePoolTarget(
        "<pool type='dir'><name>default</name><source></source><target><path>/var/lib/libvirt/images</path></target></pool>",
      ),
    ).toBe('/var/lib/libvirt/images');
  });

  it('writes an overlay volume on the golden image with its format stated, and a full copy without a backing store', () => {
    const overlay = volumeXml('vm-01.qcow2', 67108864, { path: "/g/it's.vhd", format: 'vpc' });
    expect(overlay).toContain("<backingStore><path>/g/it&apos;s.vhd</path><format type='vpc'/></backingStore>");
    expect(overlay).toContain("<format type='qcow2'/>");
    expect(volumeXml('vm-01.qcow2', 1024)).not.toContain('backingStore');
  });
});
