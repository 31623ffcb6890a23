import { loadConfig, type ConfigSearch } from './config-files.js';
import type { ConfigParser } from './configparser.js';
import { applyOverrides, localDate, resolveImageSpec, type ImageSpec } from './image-spec.js';
import type { Overrides } from './options.js';

/** What a front door asks for: an image, the values its flags or inputs give, and where its files go. */
export interface SpecRequest {
  image: string;
  /** Written into the image's section, winning over the files. */
  overrides: Overrides;
  outputDir: string;
  upload: boolean;
  /** The action's `config` file and `config-text`, read after the usual files (later wins). */
  extraFiles?: ConfigSearch['extraFiles'];
  extraTexts?: ConfigSearch['extraTexts'];
  /** Where warnings go (unknown keys); they are dropped when not given. */
  warn?: (message: string) => void;
}

/** The configuration files read, with the request's overrides written into the image's section. */
export interface ImageConfig {
  config: ConfigParser;
  /** The images the files define, before the overrides added the asked one. */
  knownImages: string[];
  /** Whether the files define the asked image. */
  hadSection: boolean;
}

/** Read the configuration and apply the overrides: what --print-config shows and resolveSpec checks. */
export function loadImageConfig(request: SpecRequest): ImageConfig {
  const { config } = loadConfig({ extraFiles: request.extraFiles, extraTexts: request.extraTexts });
  const knownImages = config.sections();
  const hadSection = applyOverrides(config, request.image, request.overrides);
  return { config, knownImages, hadSection };
}

/**
 * The image's settings, checked, as both front doors resolve them: the
 * command from its flags, the action from its inputs (and its own
 * configuration). Bad input is a UsageError.
 */
export function resolveSpec(request: SpecRequest): ImageSpec {
  const { config, knownImages, hadSection } = loadImageConfig(request);
  return resolveImageSpec(config, request.image, {
    outputDir: request.outputDir,
    date: localDate(),
    knownImages,
    hadSection,
    upload: request.upload,
    warn: request.warn,
  });
}
