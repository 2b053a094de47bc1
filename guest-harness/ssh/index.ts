/** SSH client side: connections, host-key verification (known_hosts, pins), auth, remote commands. */
export {
  defaultIdentityFiles,
  PASSPHRASE_ENV,
  type PreparedAuth,
  prepareAuth,
  type SshAuthOptions,
} from './auth.js';
export {
  type ConnectionLoss,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_READY_TIMEOUT_MS,
  SshConnection,
  type SshConnectOptions,
} from './connection.js';
export { type RemoteResult, type RunRemoteOptions, runRemote } from './exec.js';
export { blobKeyType, parseFingerprint, publicKeyLine, sshFingerprint } from './fingerprint.js';
export {
  defaultKnownHostsFiles,
  type HostKeyAcceptance,
  type HostKeyMode,
  type HostKeyPolicy,
  type HostKeyVerdict,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from './host-key-policy.js';
export { generateEd25519KeyPair, type SshKeygenOptions, type SshKeyPair } from './keygen.js';
export {
  checkHostKey,
  formatKnownHostsLine,
  globMatch,
  type HostKeyCheck,
  hashHostName,
  hostMatches,
  type KnownHostEntry,
  type KnownHosts,
  type KnownHostsProblem,
  knownHostsName,
  parseKnownHosts,
} from './known-hosts.js';
export { Limiter } from './limiter.js';
export {
  checkRemoteArg,
  checkRemotePath,
  REMOTE_ARG_RE,
  remoteCommand,
  shellQuote,
} from './remote-command.js';
