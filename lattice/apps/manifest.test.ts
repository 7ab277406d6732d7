/** The manifest checks, on real YAML (and JSON) text: every rule, with paths and lines. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../policy/index.ts';
import { CANARY_DEFAULTS, ManifestError, checkManifest, formatProblem, parseManifest, type Problem } from './index.ts';

const DIR = '/srv/shop';

/** A valid manifest with the fields of the issue; tests replace parts of it. */
const GOOD = `apiVersion: trellis.dev/v1
kind: Application
metadata:
  name: shop
spec:
  actors:
    - name: api
      source: ./api.wasm
      version: 1.2.0
      replicas: 4
      spread:
        - name: aws
          requirements: { cloud: aws }
          weight: 50
        - name: gcp
          requirements: { cloud: gcp }
          weight: 50
      links:
        - provider: keyvalue-nats
          config: { bucket: carts }
      routes:
        - prefix: /api/
          host: Shop.Example.com:8080
  providers:
    - kind: keyvalue-nats
      replicas: all
      spread: [ { name: any, requirements: {} } ]
`;

function problems(text: string): Problem[] {
  const parsed = parseManifest(text, DIR);
  expect(parsed.manifest).toBeUndefined();
  return parsed.problems.sorted();
}

/** The problem lines of a manifest, as `apply` prints them. */
const lines = (text: string) => problems(text).map(formatProblem);

/** GOOD with the actor's lines replaced from `spread:` on. */
const withActor = (body: string) => GOOD.replace(/      replicas: 4\n[\s\S]*?  providers:/, `${body}  providers:`);

describe('manifest', () => {
  it('manifest - the issue example checks into a manifest with resolved paths and normalized routes', () => {
    const { manifest, problems: p, files } = parseManifest(GOOD, DIR);
    expect(p.list).toEqual([]);
    expect(manifest).toEqual({
      name: 'shop',
      actors: [
        {
          name: 'api',
          version: '1.2.0',
          source: { file: '/srv/shop/api.wasm' },
          replicas: 4,
          spread: [
            { name: 'aws', requirements: { cloud: 'aws' }, weight: 50 },
            { name: 'gcp', requirements: { cloud: 'gcp' }, weight: 50 },
          ],
          policy: { ...DEFAULT_POLICY },
          links: [{ provider: 'keyvalue-nats', config: { bucket: 'carts' } }],
          routes: [{ prefix: '/api', host: 'shop.example.com' }],
        },
      ],
      providers: [{ kind: 'keyvalue-nats', replicas: 'all', spread: [{ name: 'any', requirements: {}, weight: 1 }] }],
    });
    expect(files).toEqual([{ path: ['spec', 'actors', 0, 'source'], kind: 'source', file: '/srv/shop/api.wasm' }]);
  });

  it('manifest - JSON text is accepted, with lines', () => {
    const json = JSON.stringify({ apiVersion: 'trellis.dev/v1', kind: 'Application', metadata: { name: 'j' }, spec: { actors: [{ name: 'a', source: 'sha256:' + 'a'.repeat(64), version: '1.0.0' }] } }, null, 2);
    const { manifest } = parseManifest(json, DIR);
    expect(manifest?.actors[0]).toMatchObject({ source: { digest: 'sha256:' + 'a'.repeat(64) }, replicas: 1, spread: [{ name: 'default', requirements: {}, weight: 1 }] });
    const bad = json.replace('"1.0.0"', '"1.0"');
    expect(lines(bad)).toEqual([expect.stringMatching(/^spec\.actors\[0\]\.version: version "1\.0" is not a semantic version.* \(line 12\)$/)]);
  });

  it('manifest - defaults: replicas 1, one spread named default with no requirements, weight 1, the default policy', () => {
    const { manifest } = parseManifest(withActor('      spread:\n        - name: a\n'), DIR);
    expect(manifest?.actors[0]).toMatchObject({ replicas: 1, spread: [{ name: 'a', requirements: {}, weight: 1 }], links: [], routes: [], policy: DEFAULT_POLICY });
    const noReplicas = parseManifest(GOOD.replace('      replicas: 4\n', ''), DIR).manifest;
    expect(noReplicas?.actors[0]?.replicas).toBe(1);
  });

  it('manifest - the example of the issue: a bad spread weight names its path and line', () => {
    const text = GOOD.replace('          weight: 50\n        - name: gcp', '          weight: 0\n        - name: gcp');
    expect(lines(text)).toEqual(['spec.actors[0].spread[0].weight: must be a positive integer, got 0 (line 14)']);
  });

  it('manifest - every problem is reported, not just the first', () => {
    const text = `apiVersion: trellis.dev/v2
kind: App
metadata:
  name: my shop
  labels: {}
spec:
  actors:
    - name: api
      source: ./api.wasm
      version: 1.2
      replicas: 0
      spread:
        - name: aws
          weight: 1.5
          requirements: { zone: 3 }
    - name: web
      sorce: ./web.wasm
      version: 2.0.0
      replicas: some
  providers:
    - kind: postgres
`;
    expect(lines(text)).toEqual([
      'apiVersion: must be trellis.dev/v1, got "trellis.dev/v2" (line 1)',
      'kind: must be Application, got "App" (line 2)',
      'metadata.name: "my shop" must hold only letters, digits, - and _ (line 4)',
      'metadata.labels: unknown field; known: name (line 5)',
      'spec.actors[0].version: must be a semantic version string like 1.2.0, got 1.2 (quote it) (line 10)',
      'spec.actors[0].replicas: must be a positive integer or "all", got 0 (line 11)',
      'spec.actors[0].spread[0].weight: must be a positive integer, got 1.5 (line 14)',
      'spec.actors[0].spread[0].requirements.zone: must be a string, got 3 (quote it: "3") (line 15)',
      'spec.actors[1].source: is required (line 16)',
      expect.stringMatching(/^spec\.actors\[1\]\.sorce: unknown field \(did you mean source\?\); known: .* \(line 17\)$/),
      'spec.actors[1].replicas: must be a positive integer or "all", got "some" (line 19)',
      expect.stringMatching(/^spec\.providers\[0\]\.kind: unknown provider "postgres" \(known: keyvalue-nats, http-client\) \(line 21\)$/),
    ]);
  });

  it('manifest - required fields and document shape', () => {
    expect(lines('')).toEqual(['must be a map, got nothing']);
    expect(lines('- a\n- b\n')).toEqual(['must be a map, got a list (line 1)']);
    expect(lines('apiVersion: trellis.dev/v1\nkind: Application\n')).toEqual(['metadata: is required (metadata.name names the app) (line 1)', 'spec: is required (line 1)']);
    expect(lines('apiVersion: trellis.dev/v1\nkind: Application\nmetadata: {}\nspec: {}\n')).toEqual(['metadata.name: is required (line 3)', 'spec.actors: is required (line 4)']);
    expect(lines('apiVersion: trellis.dev/v1\nkind: Application\nmetadata: { name: a }\nspec: { actors: [] }\n')).toEqual([expect.stringMatching(/^spec\.actors: must hold at least one actor.*\(line 4\)$/)]);
    expect(lines('kind: Application\nmetadata: { name: a }\nspec:\n  actors: {}\n  extra: 1\n')).toEqual([
      'apiVersion: is required (trellis.dev/v1) (line 1)',
      'spec.actors: must be a list, got a map (line 4)',
      'spec.extra: unknown field; known: actors, providers (line 5)',
    ]);
  });

  it('manifest - unknown fields are reported at every level: links, routes, providers; actor names are tokens', () => {
    const text = `apiVersion: trellis.dev/v1
kind: Application
metadata: { name: s }
spec:
  actors:
    - name: "api v2"
      source: ./a.wasm
      version: 1.0.0
      links: [ { provider: keyvalue-nats, conf: {} } ]
      routes: [ { prefix: /a, methods: [GET] } ]
  providers:
    - kind: keyvalue-nats
      count: 2
`;
    expect(lines(text)).toEqual([
      'spec.actors[0].name: "api v2" must hold only letters, digits, - and _ (line 6)',
      'spec.actors[0].links[0].conf: unknown field (did you mean config?); known: provider, config (line 9)',
      'spec.actors[0].routes[0].methods: unknown field; known: prefix, host (line 10)',
      'spec.providers[0].count: unknown field; known: kind, replicas, spread (line 13)',
    ]);
  });

  it('manifest - an app of providers only is accepted; providers default to 1 replica on a default spread', () => {
    const { manifest, problems: p } = parseManifest('apiVersion: trellis.dev/v1\nkind: Application\nmetadata: { name: infra }\nspec:\n  providers: [ { kind: http-client } ]\n', DIR);
    expect(p.list).toEqual([]);
    expect(manifest).toEqual({ name: 'infra', actors: [], providers: [{ kind: 'http-client', replicas: 1, spread: [{ name: 'default', requirements: {}, weight: 1 }] }] });
  });

  it('manifest - YAML syntax errors and duplicate keys give their line', () => {
    expect(lines('apiVersion: trellis.dev/v1\nkind: [Application\n')[0]).toMatch(/^not valid YAML or JSON: .*\(line \d\)$/);
    expect(lines(GOOD.replace('      version: 1.2.0\n', '      version: 1.2.0\n      version: 1.3.0\n'))).toEqual([expect.stringMatching(/^not valid YAML or JSON: Map keys must be unique.* \(line 10\)$/)]);
  });

  it('manifest - names are tokens; actor, spread and provider names are unique', () => {
    const text = withActor(`      spread:
        - name: a.b
        - name: x
        - name: x
      routes: [ { prefix: /a } ]
    - name: api
      source: sha256:${'b'.repeat(64)}
      version: 1.0.0
`).replace('  providers:\n', `  providers:\n    - kind: keyvalue-nats\n`);
    expect(lines(text)).toEqual([
      'spec.actors[0].spread[0].name: "a.b" must hold only letters, digits, - and _ (line 11)',
      'spec.actors[0].spread[2].name: spread x is listed twice (line 13)',
      'spec.actors[1].name: actor api is listed twice (line 15)',
      'spec.providers[1].kind: provider keyvalue-nats is listed twice (line 20)',
    ]);
  });

  it('manifest - sources: a path (resolved from the manifest folder) or a full sha256 digest', () => {
    expect(lines(GOOD.replace('./api.wasm', 'sha256:abc'))).toEqual(['spec.actors[0].source: a digest must be sha256:<64 hex digits> (line 8)']);
    expect(lines(GOOD.replace('source: ./api.wasm', 'source: 7'))).toEqual(['spec.actors[0].source: must be a string, got 7 (line 8)']);
    expect(parseManifest(GOOD.replace('./api.wasm', '/abs/api.wasm'), DIR).manifest?.actors[0]?.source).toEqual({ file: '/abs/api.wasm' });
  });

  it('manifest - replicas: a positive integer or "all"', () => {
    expect(parseManifest(GOOD.replace('replicas: 4', 'replicas: all'), DIR).manifest?.actors[0]?.replicas).toBe('all');
    for (const bad of ['-1', '2.5', 'All', '"4"', '1000001']) {
      expect(lines(GOOD.replace('replicas: 4', `replicas: ${bad}`))).toEqual([expect.stringMatching(/^spec\.actors\[0\]\.replicas: must be a positive integer or "all", got .* \(line 10\)$/)]);
    }
  });

  it('manifest - spreads: a non-empty list; requirements a map of strings; weights positive integers', () => {
    expect(lines(withActor('      spread: []\n'))).toEqual(['spec.actors[0].spread: must hold at least 1 item (line 10)']);
    expect(lines(withActor('      spread: { name: a }\n'))).toEqual(['spec.actors[0].spread: must be a list, got a map (line 10)']);
    expect(lines(withActor('      spread:\n        - { name: a, requirements: [x], weight: "2", zone: 1 }\n'))).toEqual([
      'spec.actors[0].spread[0].zone: unknown field; known: name, requirements, weight (line 11)',
      'spec.actors[0].spread[0].requirements: must be a map of strings, got a list (line 11)',
      'spec.actors[0].spread[0].weight: must be a positive integer, got "2" (line 11)',
    ]);
  });

  it('manifest - policy: inline (compiled, relative dirs from the manifest folder) or a file; problems at the policy field', () => {
    const inline = parseManifest(withActor('      policy:\n        maxMemoryPages: 64\n        allowedDirs: [ { guestPath: /data, hostPath: ./data } ]\n'), DIR).manifest!;
    expect(inline.actors[0]?.policy).toMatchObject({ maxMemoryPages: 64, allowedDirs: [{ guestPath: '/data', hostPath: '/srv/shop/data', readonly: true }] });
    const file = parseManifest(withActor('      policy: ./api-policy.yaml\n'), DIR);
    expect(file.manifest?.actors[0]?.policyFile).toBe('/srv/shop/api-policy.yaml');
    expect(file.files).toContainEqual({ path: ['spec', 'actors', 0, 'policy'], kind: 'policy', file: '/srv/shop/api-policy.yaml' });
    expect(lines(withActor('      policy:\n        maxMemoryPages: 64\n        allowedDirs:\n          - { guestPath: data, hostPath: ./d }\n'))).toEqual([
      'spec.actors[0].policy.allowedDirs[0].guestPath: expected an absolute path (line 13)',
    ]);
    expect(lines(withActor('      policy:\n        maxMemory: 64\n'))).toEqual(['spec.actors[0].policy.maxMemory: unknown policy field (line 11)']);
    expect(lines(withActor('      policy: 12\n'))).toEqual(['spec.actors[0].policy: must be a policy file name or an inline policy map, got 12 (line 10)']);
  });

  it('manifest - links: known provider kinds, string config, valid bucket, one link per interface', () => {
    expect(lines(withActor('      links:\n        - provider: redis\n'))).toEqual([expect.stringMatching(/^spec\.actors\[0\]\.links\[0\]\.provider: unknown provider "redis" .*\(line 11\)$/)]);
    expect(lines(withActor('      links:\n        - provider: keyvalue-nats\n          config: { bucket: "a.b", ttl: 5 }\n'))).toEqual([
      'spec.actors[0].links[0].config.ttl: must be a string, got 5 (quote it: "5") (line 12)',
      `spec.actors[0].links[0].config.bucket: bucket "a.b" may only hold letters, digits, '_' and '-' (line 12)`,
    ]);
    expect(lines(withActor('      links:\n        - provider: keyvalue-nats\n          config: { bucket: trellis-prod-config }\n'))).toEqual([
      expect.stringMatching(/^spec\.actors\[0\]\.links\[0\]\.config\.bucket: bucket "trellis-prod-config" is reserved for Trellis itself/),
    ]);
    expect(lines(withActor('      links:\n        - provider: keyvalue-nats\n        - provider: keyvalue-nats\n'))).toEqual([
      'spec.actors[0].links[1].provider: an actor has one link per interface: keyvalue-nats already provides keyvalue (line 12)',
    ]);
  });

  it('manifest - routes: checked as the route store checks them, and one actor per prefix and host in the app', () => {
    expect(lines(withActor('      routes:\n        - prefix: api\n        - prefix: /x\n          host: a/b\n'))).toEqual([
      'spec.actors[0].routes[0].prefix: route prefix "api" must start with / and hold no spaces, ? or # (line 11)',
      'spec.actors[0].routes[1].host: route host "a/b" must be a host name like example.com (line 13)',
    ]);
    const twice = withActor(`      routes: [ { prefix: /a } ]
    - name: web
      source: ./web.wasm
      version: 1.0.0
      routes: [ { prefix: /a/ }, { prefix: /a, host: x.com } ]
`);
    expect(lines(twice)).toEqual(['spec.actors[1].routes[0].prefix: /a is already routed to api in this app (line 14)']);
  });

  it('manifest - canary: camelCase fields in their complete form, defaults filled in', () => {
    const { manifest } = parseManifest(withActor('      canary:\n        steps: [5, 50, 100]\n        interval: 1m\n        progressDeadline: 20m\n        successRate: 0.95\n        stickyHeader: X-User\n'), DIR);
    expect(manifest?.actors[0]?.canary).toEqual({ ...CANARY_DEFAULTS, steps: [5, 50, 100], intervalMs: 60_000, progressDeadlineMs: 1_200_000, successRate: 0.95, stickyHeader: 'x-user' });
    expect(parseManifest(withActor('      canary: {}\n'), DIR).manifest?.actors[0]?.canary).toEqual(CANARY_DEFAULTS);
  });

  it('manifest - canary: steps 1..100 ascending ending at 100, durations, ranges, sticky header or cookie', () => {
    const bad = withActor(`      canary:
        steps: [0, 30, 20]
        interval: soon
        minRequests: 0
        successRate: 99
        p99Ms: -5
        failureLimit: 1.5
        progressDeadline: 500ms
        stickyHeader: "a b"
        stickyCookie: session
        keepCanaryOnRollback: "yes"
        analysis: true
`);
    expect(lines(bad)).toEqual([
      'spec.actors[0].canary.steps[0]: must be a percentage from 1 to 100, got 0 (line 11)',
      'spec.actors[0].canary.interval: "soon" is not a duration (e.g. 500ms, 30s, 10m, 90d, or milliseconds) (line 12)',
      'spec.actors[0].canary.minRequests: must be a positive integer, got 0 (line 13)',
      'spec.actors[0].canary.successRate: must be a number from 0 to 1 (0.99 is 99 %), got 99 (line 14)',
      'spec.actors[0].canary.p99Ms: must be a number of milliseconds above 0, got -5 (line 15)',
      'spec.actors[0].canary.failureLimit: must be an integer from 1 to 1000, got 1.5 (line 16)',
      'spec.actors[0].canary.progressDeadline: must be from 1s to 604800s, got 500ms (line 17)',
      'spec.actors[0].canary.stickyHeader: "a b" is not a valid name (letters, digits and -, no spaces) (line 18)',
      'spec.actors[0].canary.stickyCookie: give stickyHeader or stickyCookie, not both (line 19)',
      'spec.actors[0].canary.keepCanaryOnRollback: must be true or false, got "yes" (line 20)',
      expect.stringMatching(/^spec\.actors\[0\]\.canary\.analysis: unknown field; known: steps, .* \(line 21\)$/),
    ]);
    expect(lines(withActor('      canary: { steps: [10, 30] }\n'))).toEqual(['spec.actors[0].canary.steps: must end at 100, got 10, 30 (line 10)']);
    expect(lines(withActor('      canary: { steps: [] }\n'))).toEqual(['spec.actors[0].canary.steps: must hold at least 1 item (line 10)']);
    expect(lines(withActor('      canary: { interval: 10m, progressDeadline: 5m }\n'))).toEqual(['spec.actors[0].canary.progressDeadline: must not be shorter than interval (line 10)']);
  });
});

describe('checkManifest (files)', () => {
  it('manifest files - a missing component and a bad policy file are problems too, all in one error, in line order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'));
    await writeFile(join(dir, 'policy.yaml'), 'maxMemoryPages: 0\n');
    const text = withActor('      policy: ./policy.yaml\n      replicas: -3\n');
    const err = await checkManifest(text, dir, 'app.yaml').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    const e = err as ManifestError;
    expect(e.code).toBe('TRELLIS_BAD_REQUEST');
    expect(e.problems.map(formatProblem)).toEqual([
      `spec.actors[0].source: ${dir}/api.wasm: no such file (give a component file, or sha256:<digest> of one already pushed) (line 8)`,
      `spec.actors[0].policy: ${dir}/policy.yaml: invalid policy option maxMemoryPages: expected an integer from 1 to 65536, got 0 (line 10)`,
      'spec.actors[0].replicas: must be a positive integer or "all", got -3 (line 11)',
    ]);
    expect(e.message).toMatch(/^app\.yaml has 3 problems:\n  spec\.actors\[0\]\.source: /);
    expect(e.toJSON()).toEqual({ code: 'TRELLIS_BAD_REQUEST', message: e.message, problems: e.problems });
  });

  it('manifest files - a source that is not a WebAssembly file, or a folder, is a problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'));
    await writeFile(join(dir, 'api.wasm'), 'not wasm at all');
    const err = (await checkManifest(GOOD, dir).catch((e: unknown) => e)) as ManifestError;
    expect(err.problems.map(formatProblem)).toEqual([expect.stringMatching(/^spec\.actors\[0\]\.source: .*\/api\.wasm: is not a WebAssembly file .*\(line 8\)$/)]);
    const folder = (await checkManifest(GOOD.replace('./api.wasm', '.'), dir).catch((e: unknown) => e)) as ManifestError;
    expect(folder.problems.map(formatProblem)).toEqual([expect.stringMatching(/: is not a file /)]);
  });

  it('manifest files - a policy file is loaded relative to the manifest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'manifest-'));
    await writeFile(join(dir, 'api.wasm'), new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    await writeFile(join(dir, 'policy.yaml'), 'maxMemoryPages: 100\nallowedDirs: [ { guestPath: /d, hostPath: ./d } ]\n');
    const manifest = await checkManifest(withActor('      policy: ./policy.yaml\n'), dir);
    expect(manifest.actors[0]?.policy).toMatchObject({ maxMemoryPages: 100, allowedDirs: [{ guestPath: '/d', hostPath: join(dir, 'd'), readonly: true }] });
  });
});
