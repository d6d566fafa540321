#!/usr/bin/env node
// The Node check runs before the command loads: on an older Node the command would fail on some
// import or syntax with a message that does not name the cause. The minimum is the `engines`
// field of the package.json above this folder, the one place it is declared.
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const [, needMajor, needMinor] = /^>=\s*(\d+)\.(\d+)/.exec(manifest.engines?.node ?? '') ?? [];
const [major, minor] = process.versions.node.split('.').map(Number);
const tooOld =
  needMajor !== undefined &&
  (major < Number(needMajor) || (major === Number(needMajor) && minor < Number(needMinor)));
if (tooOld) {
  process.stderr.write(
    `volley: needs Node.js ${needMajor}.${needMinor} or newer; this is ${process.version}\n`,
  );
  process.exit(2);
}
await import('../dist/main.js');
