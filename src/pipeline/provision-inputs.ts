import { createHash, type Hash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Provisioner, ProvisionSpec } from '../config/provisioners.js';
import type { BuildInput } from '../supply-chain/manifest.js';
import { redactSecrets } from '../common/credentials.js';

/**
 * The provisioning's inputs for the manifest: one entry per provisioner, named
 * by its line, whose SHA-256 covers the line and the host files it reads (a
 * `file` folder's whole tree, a script, a playbook), and one for the variables'
 * names and non-secret values; a secret that a line holds is masked in its
 * name. skip-unchanged compares them with the previous
 * build's, so a changed script or playbook is a changed build. A secret's value
 * is not hashed: a digest of a short secret could be guessed from the manifest.
 * Roles and files an Ansible playbook includes are not followed.
 */
export async function provisioningInputs(
  provision: ProvisionSpec | undefined,
  secrets: readonly string[] = [],
): Promise<BuildInput[]> {
  if (!provision?.provisioners.length) return [];
  const inputs: BuildInput[] = [];
  for (const provisioner of provision.provisioners) {
    const hash = createHash('sha256').update(`${provisioner.text}\n`);
    for (const path of filesOf(provisioner)) await hashTree(hash, path, '.');
    inputs.push({ role: 'provisioning', name: redactSecrets(provisioner.text, secrets), sha256: hash.digest('hex') });
  }
  if (provision.env.length) {
    const hash = createHash('sha256');
    for (const variable of provision.env)
      hash.update(variable.secret ? `secret ${variable.name}\n` : `${variable.name}=${variable.value}\n`);
    inputs.push({ role: 'provisioning', name: 'provision-env', sha256: hash.digest('hex') });
  }
  return inputs;
}

function filesOf(provisioner: Provisioner): string[] {
  if (provisioner.kind === 'file') return [provisioner.source];
  if (provisioner.kind === 'script') return [provisioner.path];
  if (provisioner.kind === 'ansible') return [provisioner.playbook];
  return [];
}

/** Each entry's relative path, kind and content, in name order; a symlink's target text, never what it points at. */
async function hashTree(hash: Hash, path: string, relative: string): Promise<void> {
  const stat = await lstat(path);
  if (stat.isSymbolicLink()) {
    hash.update(`link ${relative} ${await readlink(path)}\n`);
  } else if (stat.isDirectory()) {
    hash.update(`dir ${relative} ${(stat.mode & 0o7777).toString(8)}\n`);
    const names = (await readdir(path)).sort();
    for (const name of names) await hashTree(hash, join(path, name), join(relative, name));
  } else if (stat.isFile()) {
    const content = await readFile(path);
    hash.update(`file ${relative} ${(stat.mode & 0o7777).toString(8)} ${content.length}\n`).update(content);
  } else {
    hash.update(`other ${relative}\n`);
  }
}
