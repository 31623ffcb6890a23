import { HttpClient, type HttpClientResponse } from '@actions/http-client';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * The few calls of OpenStack's image service API v2 an upload needs, with
 * @actions/http-client (a dependency already): create an image record,
 * PUT its data, read it back, list by name, delete. No OpenStack SDK for
 * Node is kept up well enough to take on for five calls.
 */

/** An image as Glance's API returns it (the fields the upload reads; properties are top-level keys too). */
export interface GlanceImage {
  id: string;
  name: string;
  status: string;
  size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  disk_format: string | null;
  container_format: string | null;
  visibility: string;
  tags: string[];
  [property: string]: unknown;
}

/** A request Glance refused or could not answer: its status (0 when no answer came) and its words. */
export class GlanceError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'GlanceError';
  }
}

/** A Glance error worth another try: no answer, or the service's own trouble (5xx, 408, 429). */
export function isTransientGlanceFailure(error: unknown): boolean {
  if (!(error instanceof GlanceError)) return false;
  return error.status === 0 || error.status >= 500 || error.status === 408 || error.status === 429;
}

const USER_AGENT = 'image-factory';

export class GlanceClient {
  private readonly http = new HttpClient(USER_AGENT);

  /** `endpoint`: the service's root (`https://image.example.org:9292`); `token`: a Keystone token, or none. */
  constructor(
    readonly endpoint: string,
    private readonly token?: string,
  ) {}

  private headers(more: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
    return { Accept: 'application/json', ...(this.token ? { 'X-Auth-Token': this.token } : {}), ...more };
  }

  private url(path: string): string {
    return `${this.endpoint}${path}`;
  }

  /** The response's body as JSON when its status is `expected`; a GlanceError with Glance's words otherwise. */
  private async read<T>(what: string, request: Promise<HttpClientResponse>, expected: number[]): Promise<T> {
    let response: HttpClientResponse;
    try {
      response = await request;
    } catch (error) {
      throw new GlanceError(`${what}: no answer from ${this.endpoint} (${(error as Error).message})`, 0);
    }
    const body = await response.readBody();
    const status = response.message.statusCode ?? 0;
    if (!expected.includes(status)) {
      const words = body
        .replace(/<[^>]*>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 300);
      throw new GlanceError(`${what}: HTTP ${status}${words ? ` (${words})` : ''}`, status);
    }
    return (body ? JSON.parse(body) : undefined) as T;
  }

  /**
   * The images of this exact name that `owner` owns (null: a service without Keystone), whatever their
   * visibility, every page: another project's public image of the name is not this upload's to replace.
   */
  async imagesNamed(name: string, owner: string | null): Promise<GlanceImage[]> {
    const images: GlanceImage[] = [];
    let next: string | undefined = `/v2/images?name=${encodeURIComponent(name)}&visibility=all&limit=100`;
    while (next) {
      const page: { images: GlanceImage[]; next?: string } = await this.read(
        `listing the images named ${name}`,
        this.http.get(this.url(next), this.headers()),
        [200],
      );
      images.push(...page.images.filter((image) => image.name === name && (image.owner ?? null) === owner));
      next = page.next;
    }
    return images;
  }

  /** A new image record (status `queued`): name, formats, visibility, tags and properties. */
  createImage(record: Record<string, unknown>): Promise<GlanceImage> {
    return this.read(
      `creating the image ${String(record.name)}`,
      this.http.post(
        this.url('/v2/images'),
        JSON.stringify(record),
        this.headers({ 'Content-Type': 'application/json' }),
      ),
      [201],
    );
  }

  /** The image's data: Glance answers once it has stored it (204). */
  async uploadData(id: string, data: Readable, size: number): Promise<void> {
    const headers = this.headers({ 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
    await this.read(
      `uploading the data of image ${id}`,
      this.http.sendStream('PUT', this.url(`/v2/images/${id}/file`), data, headers),
      [204],
    );
  }

  image(id: string): Promise<GlanceImage> {
    return this.read(`reading image ${id}`, this.http.get(this.url(`/v2/images/${id}`), this.headers()), [200]);
  }

  async deleteImage(id: string): Promise<void> {
    await this.read(`deleting image ${id}`, this.http.del(this.url(`/v2/images/${id}`), this.headers()), [204, 404]);
  }
}
