/** Gateway options: validated once, at start, into the complete form the gateway runs on. */
import { parseListen } from '../../lattice/http/index.ts';
import { intOption, latticeOption } from '../../lattice/options/index.ts';

/** What a user may set (flags `--listen`, `--max-body-bytes`, `--deadline-ms`). */
export interface GatewaySettings {
  lattice: string;
  /** host:port to listen on. Default 127.0.0.1:8080; port 0 picks a free one. */
  listen?: string;
  /** Largest request body. Default 1 MiB; capped below the server's max_payload at start. */
  maxBodyBytes?: number;
  /** Deadline of each invocation. Default 10000 ms. */
  deadlineMs?: number;
}

/** The complete, validated gateway options. */
export interface CompiledGatewayOptions {
  lattice: string;
  listenHost: string;
  listenPort: number;
  maxBodyBytes: number;
  deadlineMs: number;
}

/** Largest body a gateway may be configured for; NATS max_payload caps it further. */
const MAX_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

/** Validate gateway options; zero, negative or absurd values fail naming the flag. */
export function compileGatewayOptions(input: GatewaySettings): CompiledGatewayOptions {
  const { host, port } = parseListen(input.listen ?? '127.0.0.1:8080', '--listen', '0.0.0.0');
  return {
    lattice: latticeOption(input.lattice),
    listenHost: host,
    listenPort: port,
    maxBodyBytes: intOption('--max-body-bytes', input.maxBodyBytes ?? 1024 * 1024, 1, MAX_BODY_LIMIT_BYTES),
    deadlineMs: intOption('--deadline-ms', input.deadlineMs ?? 10_000, 1, 3_600_000),
  };
}
