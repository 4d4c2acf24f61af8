#!/usr/bin/env node
// The `baton` command. In a checkout it runs the TypeScript sources (Node strips the
// types); in an installed package, where Node refuses to strip types under
// node_modules, it runs the JavaScript that `npm pack` built into dist/.
import { existsSync } from 'node:fs';

const source = new URL('../scripts/baton.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/scripts/baton.js', import.meta.url).href);
