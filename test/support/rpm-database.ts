import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A spec of a noarch package with an epoch and a subpackage (whose source rpm is the main package's). */
const SPEC = `Name: fixture-hello
Version: 1.2
Release: 3.fx1
Epoch: 1
Summary: A fixture package
License: MIT
BuildArch: noarch
%description
A fixture package.
%package libs
Summary: Its library
%description libs
Its library.
%files
%files libs
`;

/** What the database holds, as the inventory reads it. */
export const RPM_PACKAGES = [
  {
    name: 'fixture-hello',
    version: '1:1.2-3.fx1',
    architecture: 'noarch',
    source: 'fixture-hello',
    sourceVersion: '1.2-3.fx1',
  },
  {
    name: 'fixture-hello-libs',
    version: '1:1.2-3.fx1',
    architecture: 'noarch',
    source: 'fixture-hello',
    sourceVersion: '1.2-3.fx1',
  },
];

/**
 * Build the spec's packages with the host's rpmbuild (in `work`) and install them with
 * `rpm --justdb` into a database of their own at `dbPath`: a real rpm database, as Fedora's.
 */
export function rpmDatabase(work: string, dbPath: string): void {
  writeFileSync(join(work, 'fixture.spec'), SPEC);
  const top = join(work, 'rpmbuild');
  execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, join(work, 'fixture.spec')], {
    stdio: 'pipe',
  });
  const rpms = readdirSync(join(top, 'RPMS', 'noarch')).map((name) => join(top, 'RPMS', 'noarch', name));
  mkdirSync(dbPath, { recursive: true });
  execFileSync('rpm', ['--dbpath', dbPath, '--initdb']);
  execFileSync('rpm', ['--dbpath', dbPath, '--install', '--justdb', '--nodeps', '--ignoreos', ...rpms], {
    stdio: 'pipe',
  });
}
