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
  PreviousMetrics = 'previous-metrics',
  SkipUnchanged = 'skip-unchanged',
  Compress = 'compress',
  BootTest = 'boot-test',
  SigningKey = 'signing-key',
  SigningPassphrase = 'signing-passphrase',
  Provision = 'provision',
  ProvisionTimeout = 'provision-timeout',
  BootTestCommand = 'boot-test-command',
  BootTestPlaybook = 'boot-test-playbook',
  InstallDependencies = 'install-dependencies',
  Upload = 'upload',
  OutputDir = 'output-dir',
}

/** What the main step hands to the post step. */
export enum State {
  /** JSON list of the Resources the build has not undone yet, oldest first. */
  PendingResources = 'pending-resources',
}
