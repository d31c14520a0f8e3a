#!/usr/bin/env node
// The flatten library call without the CLI around it (no oclif start-up): isolates labctl's own cost.
// Usage: flatten-lib.mjs FILE OUT
import { flatten } from '@labctl/vhd/flatten';

const [source, out] = process.argv.slice(2);
const result = await flatten(source, out);
console.log(JSON.stringify(result));
