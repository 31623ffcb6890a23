import { parseBoolean } from './configparser.js';
import { UsageError } from './usage-error.js';

/** Who may see an image in Glance (its API's `visibility`). */
export const GLANCE_VISIBILITIES = ['private', 'shared', 'community', 'public'] as const;
export type GlanceVisibility = (typeof GLANCE_VISIBILITIES)[number];

/** The keys of a destination section that only `upload_type = glance` reads. */
export const GLANCE_KEYS = [
  'glance-name',
  'glance-visibility',
  'glance-tags',
  'glance-properties',
  'glance-replace',
  'glance-cloud',
] as const;

/** An OpenStack image service destination (`upload_type = glance`); upload_target is its endpoint. */
export interface GlanceSettings {
  /** The image's name in Glance (glance-name); the image's own name (without the date) when unset. */
  name?: string;
  visibility: GlanceVisibility;
  tags: string[];
  /** More image properties (glance-properties: one `key = value` a line), over the ones the build derives. */
  properties: Record<string, string>;
  /** An image of the same name is deleted once the new one is active (glance-replace). */
  replace: boolean;
  /** The clouds.yaml entry whose Keystone credentials to use (glance-cloud); otherwise the OS_* variables, if any. */
  cloud?: string;
}

/** A key's value in the section, or undefined; where it is, for messages. */
export interface SectionKeys {
  get(key: string): string | undefined;
  where(key: string): string;
}

/** `upload_target` must be the service's http(s) endpoint. */
export function checkGlanceEndpoint(name: string, target: string | undefined, where: string): string {
  const example = 'e.g. https://image.example.org:9292 (the image service endpoint of `openstack catalog list`)';
  if (!target)
    throw new UsageError(`[${name}] has no 'upload_target': a glance destination needs its endpoint, ${example}.`);
  let url: URL | undefined;
  try {
    url = new URL(target);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new UsageError(
      `${where}: '${target}' is not an http(s) URL; a glance destination needs its endpoint, ${example}.`,
    );
  }
  if (url.username || url.password) {
    throw new UsageError(
      `${where}: the endpoint holds a user or password; Glance's credentials come from the OS_* variables or clouds.yaml (glance-cloud).`,
    );
  }
  return target.replace(/\/+$/, '');
}

/** The glance-* keys of a destination section, checked. */
export function resolveGlanceSettings(keys: SectionKeys): GlanceSettings {
  const visibility = (keys.get('glance-visibility')?.trim() || 'private') as GlanceVisibility;
  if (!GLANCE_VISIBILITIES.includes(visibility)) {
    throw new UsageError(
      `${keys.where('glance-visibility')}: '${visibility}' is not one of ${GLANCE_VISIBILITIES.join(', ')}.`,
    );
  }
  const replaceText = keys.get('glance-replace')?.trim() || 'no';
  const replace = parseBoolean(replaceText);
  if (replace === undefined) {
    throw new UsageError(`${keys.where('glance-replace')}: '${replaceText}' is not a boolean; use yes or no.`);
  }
  const tags = (keys.get('glance-tags') ?? '')
    .split(/[,\n]/)
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  const properties: Record<string, string> = {};
  for (const line of (keys.get('glance-properties') ?? '').split('\n')) {
    if (line.trim() === '') continue;
    const match = /^\s*([A-Za-z0-9_.:-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match) {
      throw new UsageError(
        `${keys.where('glance-properties')}: '${line.trim()}' is not a property; write one 'key = value' a line.`,
      );
    }
    properties[match[1]] = match[2];
  }
  const name = keys.get('glance-name')?.trim() || undefined;
  const cloud = keys.get('glance-cloud')?.trim() || undefined;
  return { name, visibility, tags, properties, replace, cloud };
}
