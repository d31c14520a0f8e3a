/** @labctl/libvirt: implementation lands with its issue. */
export const PACKAGE_NAME = '@labctl/libvirt';
