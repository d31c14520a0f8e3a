/** @labctl/discovery: implementation lands with its issue. */
export const PACKAGE_NAME = '@labctl/discovery';
