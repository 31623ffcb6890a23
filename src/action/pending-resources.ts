import * as core from '@actions/core';
import { nvramPath } from '../host/libvirt.js';
import type { Resource } from '../context/undo-list.js';
import { State } from './constants.js';

/**
 * Kept in the step's state at every change, so that a main step killed
 * outright still tells the post step what to undo. core.saveState appends
 * to GITHUB_STATE synchronously; the runner keeps the last value.
 */
export function savePendingResources(pending: Resource[]): void {
  core.saveState(State.PendingResources, JSON.stringify(pending));
}

const FIELDS: Record<Resource['kind'], string[]> = {
  domain: ['uri', 'name'],
  appliance: ['disk'],
  path: ['path'],
  acl: ['path', 'entry'],
};

function isResource(value: unknown): value is Resource {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !Object.hasOwn(FIELDS, kind)) return false;
  const fields = value as Record<string, unknown>;
  const pid = fields.pid;
  if (kind === 'appliance' && pid !== undefined && !(typeof pid === 'string' && /^\d+$/.test(pid))) return false;
  const present = FIELDS[kind as Resource['kind']].every(
    (field) => typeof fields[field] === 'string' && fields[field] !== '',
  );
  return present && (kind !== 'domain' || nvramIsTheDomains(fields));
}

/** A domain's NVRAM, when it has one, is the file libvirt names after it and nothing else: the post step removes it. */
function nvramIsTheDomains(domain: Record<string, unknown>): boolean {
  if (domain.nvram === undefined) return true;
  const name = String(domain.name);
  return !name.includes('/') && domain.nvram === nvramPath(String(domain.uri), name);
}

/** What the main step left to undo, oldest first; what cannot be read is reported, not guessed at. */
export function readPendingResources(text = core.getState(State.PendingResources)): {
  resources: Resource[];
  unreadable: string[];
} {
  if (text.trim() === '') return { resources: [], unreadable: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { resources: [], unreadable: [text] };
  }
  if (!Array.isArray(parsed)) return { resources: [], unreadable: [text] };
  const resources: Resource[] = [];
  const unreadable: string[] = [];
  for (const item of parsed) {
    if (isResource(item)) resources.push(item);
    else unreadable.push(JSON.stringify(item));
  }
  return { resources, unreadable };
}
