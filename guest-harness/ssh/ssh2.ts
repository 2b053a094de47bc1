/** ssh2 is CommonJS: one place takes its default export apart for the ESM modules of this layer. */
import ssh2 from 'ssh2';

export const { Client, Server, utils } = ssh2;
export type {
  AnyAuthMethod,
  AuthContext,
  ClientChannel,
  ConnectConfig,
  Connection,
  ParsedKey,
  ServerChannel,
  Session,
  SFTPWrapper,
  Stats,
} from 'ssh2';
