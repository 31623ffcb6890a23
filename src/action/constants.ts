/** The action's inputs, as action.yml declares them. */
export enum Input {
  Image = 'image',
  CacheDir = 'cache-dir',
  Format = 'format',
  ImageSize = 'image-size',
  Mac = 'mac',
  InstallerLogs = 'installer-logs',
  LogFile = 'log-file',
  LogFilename = 'log-filename',
  Config = 'config',
  ConfigText = 'config-text',
  Accelerator = 'accelerator',
  Arch = 'arch',
  Firmware = 'firmware',
  InstallTimeout = 'install-timeout',
  StallTimeout = 'stall-timeout',
  ZeroFreeSpace = 'zero-free-space',
  Generalize = 'generalize',
  PreviousManifest = 'previous-manifest',
  Compress = 'compress',
  BootTest = 'boot-test',
  InstallDependencies = 'install-dependencies',
  Upload = 'upload',
  OutputDir = 'output-dir',
}

/** The action's outputs, as action.yml declares them. */
export enum Output {
  Image = 'image',
  ImagePath = 'image-path',
  Format = 'format',
  Size = 'size',
  DiskUsage = 'disk-usage',
  Sha256 = 'sha256',
  ChecksumPath = 'checksum-path',
  RawPath = 'raw-path',
  ManifestPath = 'manifest-path',
  PackagesPath = 'packages-path',
  SbomPath = 'sbom-path',
  ChecksumsPath = 'checksums-path',
  ChangesPath = 'changes-path',
  ImagePaths = 'image-paths',
  Packages = 'packages',
  Generalized = 'generalized',
  GeneralizedLeftOut = 'generalized-left-out',
  Layout = 'layout',
  ConsoleLog = 'console-log',
  Accelerator = 'accelerator',
  Arch = 'arch',
  Firmware = 'firmware',
  Uploaded = 'uploaded',
  CacheHit = 'cache-hit',
  BootSeconds = 'boot-seconds',
}

/** What the main step hands to the post step. */
export enum State {
  /** JSON list of the Resources the build has not undone yet, oldest first. */
  PendingResources = 'pending-resources',
}
