// A deliberately hostile actor for the sandbox tests. Each request path makes one genuine attempt
// to escape the actor's policy; the host decides what the invocation gets. When an attempt
// succeeds the actor answers 200 with what it got, so a test can tell a hole from a denial; when
// the host denies the access, the actor answers `err` with the error the host gave it (unless
// the host already failed the invocation).
import { getDirectories } from 'wasi:filesystem/preopens@0.2.10';
import { getEnvironment } from 'wasi:cli/environment@0.2.10';
import { getEnv } from 'trellis:actor/config@0.1.0';
import { send } from 'trellis:actor/http-client@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The error a denied import call carries (jco throws `err` payloads as `payload`). */
function reason(e) {
  return String(e?.payload ?? e?.message ?? e);
}

function ok(text) {
  return { status: 200, headers: [['content-type', 'text/plain; charset=utf-8']], body: encoder.encode(text) };
}

function readAll(file) {
  const chunks = [];
  let offset = 0n;
  for (;;) {
    const [chunk, end] = file.read(65536n, offset);
    chunks.push(decoder.decode(chunk));
    offset += BigInt(chunk.length);
    if (end || chunk.length === 0) return chunks.join('');
  }
}

/** Preopened dirs, optionally only the one named by `?dir=`. */
function dirs(params) {
  const wanted = params.get('dir');
  const all = getDirectories();
  const picked = wanted ? all.filter(([, name]) => name === wanted) : all;
  if (picked.length === 0) throw `no preopened dir${wanted ? ` named ${wanted}` : ''} (have: ${all.map(([, n]) => n).join(', ') || 'none'})`;
  return picked;
}

/** Try `attempt` in each preopened dir; the first success wins, else fail with every denial. */
function inEachDir(params, attempt) {
  const denials = [];
  for (const [dir, name] of dirs(params)) {
    try {
      return ok(attempt(dir, name));
    } catch (e) {
      denials.push(`${name}: ${reason(e)}`);
    }
  }
  throw denials.join('; ');
}

const behaviours = {
  // Read /etc/passwd through every preopen: directly when `/` is preopened, else by climbing out
  // with `..` (which a correct sandbox must refuse).
  '/read-passwd': (params) =>
    inEachDir(params, (dir, name) => {
      const path = name === '/' ? 'etc/passwd' : `${'../'.repeat(16)}etc/passwd`;
      return readAll(dir.openAt({ symlinkFollow: true }, path, {}, { read: true }));
    }),

  // Plant a symlink to /etc/passwd inside a granted dir (or use the one named by `?link=` that a
  // test planted) and read through it.
  '/symlink-escape': (params) =>
    inEachDir(params, (dir) => {
      const link = params.get('link') || 'trellis-escape';
      let planting = '';
      try {
        dir.symlinkAt(params.get('target') || '/etc/passwd', link);
      } catch (e) {
        // Already there, or the dir is read-only: reading through an existing link still counts.
        planting = ` (planting the link: ${reason(e)})`;
      }
      try {
        return readAll(dir.openAt({ symlinkFollow: true }, link, {}, { read: true }));
      } catch (e) {
        throw `${reason(e)}${planting}`;
      }
    }),

  // Create and write a file in a granted dir (the test grants it read-only).
  '/write-readonly': (params) =>
    inEachDir(params, (dir, name) => {
      const file = params.get('file') || 'trellis-hostile.txt';
      const handle = dir.openAt({}, file, { create: true }, { write: true });
      const written = handle.write(encoder.encode('written by the hostile actor\n'), 0n);
      return `wrote ${written} bytes to ${name}/${file}`;
    }),

  // Hard-link `?from=` to `?to=` in a granted dir (allowed only where the grant is writable).
  '/link': (params) =>
    inEachDir(params, (dir, name) => {
      dir.linkAt({ symlinkFollow: false }, params.get('from'), dir, params.get('to'));
      return `linked ${name}/${params.get('to')}`;
    }),

  // Set the modification time of `?file=` to `?seconds=`, leaving its access time; answers the new stat's time.
  '/set-times': (params) =>
    inEachDir(params, (dir) => {
      const file = params.get('file');
      const at = { tag: 'timestamp', val: { seconds: BigInt(params.get('seconds')), nanoseconds: 0 } };
      dir.setTimesAt({ symlinkFollow: true }, file, { tag: 'no-change' }, at);
      return String(dir.statAt({ symlinkFollow: true }, file).dataModificationTimestamp.seconds);
    }),

  // What the sandbox says of `?path=` (default `.`): its stat, and whether `?same-as=` is the same object.
  '/stat': (params) =>
    inEachDir(params, (dir) => {
      const path = params.get('path') || '.';
      const st = dir.statAt({ symlinkFollow: false }, path);
      const out = { type: st.type, linkCount: String(st.linkCount), size: String(st.size), mtime: st.dataModificationTimestamp ? String(st.dataModificationTimestamp.seconds) : null };
      const other = params.get('same-as');
      if (other) {
        const [a, b] = [path, other].map((p) => dir.openAt({ symlinkFollow: false }, p, {}, { read: true }).metadataHash());
        out.sameObject = a.lower === b.lower && a.upper === b.upper;
      }
      return JSON.stringify(out);
    }),

  // Read a non-granted env var through the Trellis config import.
  '/env-config': (params) => ok(getEnv(params.get('name') || 'SECRET')),

  // Read a non-granted env var through WASI's environment: it must simply not be there.
  '/env-wasi': (params) => {
    const name = params.get('name') || 'SECRET';
    const found = getEnvironment().find(([key]) => key === name);
    if (!found) throw `env var not visible: ${name}`;
    return ok(found[1]);
  },

  // Call a host the policy does not list.
  '/http': (params) => {
    const url = params.get('url') || 'http://example.com/';
    const res = send({ method: 'GET', url, headers: [], body: new Uint8Array() });
    return { status: 200, headers: [['x-upstream-status', String(res.status)]], body: res.body };
  },

  // A harmless call, to show the instance (or its replacement) still works after a violation.
  '/ok': () => ok('ok'),
};

export const handler = {
  handle(req) {
    const behaviour = behaviours[req.path];
    if (!behaviour) {
      return { status: 404, headers: [], body: encoder.encode(`unknown behaviour ${req.path}; try ${Object.keys(behaviours).join(' ')}`) };
    }
    try {
      return behaviour(new URLSearchParams(req.query));
    } catch (e) {
      throw reason(e);
    }
  },
};
