// Bundle each entry point with ncc into dist/<name>/index.js. Each folder gets
// a package.json marking it ESM, so Node runs the bundle as a module.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';

// ncc names modules by their path from here: a node_modules that is a symlink
// to another checkout's (a git worktree's usual shortcut) gives a bundle that
// differs from the one a clean checkout makes, and CI's dist/ check fails.
if (lstatSync('node_modules').isSymbolicLink()) {
  console.error('bundle: node_modules is a symlink; run npm ci here, or bundle in the main checkout');
  process.exit(1);
}

const entries = {
  cli: 'build/src/cli/index.js',
  main: 'build/src/action/index.js',
  post: 'build/src/action/post-index.js',
};

for (const [name, entry] of Object.entries(entries)) {
  const out = `dist/${name}`;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  execFileSync(
    'npx',
    ['ncc', 'build', entry, '--out', out, '--license', 'licenses.txt', '--quiet', '--target', 'es2022'],
    {
      stdio: 'inherit',
    },
  );
  writeFileSync(`${out}/package.json`, '{\n  "type": "module"\n}\n');
}
