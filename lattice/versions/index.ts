/** Semantic version ordering (semver.org §11), pure: callers sort live versions with it. */

/**
 * Compare two semantic versions (`major.minor.patch[-pre.release][+build]`): negative when
 * `a` sorts before `b`, positive after, 0 when they have the same precedence. Numbers compare
 * numerically; a pre-release sorts before its release; pre-release identifiers compare one by
 * one, numeric ones numerically and below alphanumeric ones, and a shorter list that is a
 * prefix of a longer one sorts first (1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta <
 * 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0). Build metadata is ignored.
 */
export function compareVersions(a: string, b: string): number {
  const [coreA, preA] = split(a);
  const [coreB, preB] = split(b);
  for (let i = 0; i < 3; i++) {
    const diff = (coreA[i] ?? 0) - (coreB[i] ?? 0);
    if (diff !== 0) return Math.sign(diff);
  }
  if (preA.length === 0 || preB.length === 0) return preA.length === preB.length ? 0 : preA.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(preA.length, preB.length); i++) {
    const diff = compareIdentifiers(preA[i]!, preB[i]!);
    if (diff !== 0) return diff;
  }
  return Math.sign(preA.length - preB.length);
}

const NUMERIC = /^\d+$/;

function compareIdentifiers(x: string, y: string): number {
  const xNum = NUMERIC.test(x);
  const yNum = NUMERIC.test(y);
  if (xNum && yNum) return Math.sign(Number(x) - Number(y));
  if (xNum !== yNum) return xNum ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Core numbers and pre-release identifiers; the pre-release runs from the first '-' (it may hold more). */
function split(version: string): [core: number[], pre: string[]] {
  const plus = version.indexOf('+');
  const noBuild = plus < 0 ? version : version.slice(0, plus);
  const dash = noBuild.indexOf('-');
  const core = (dash < 0 ? noBuild : noBuild.slice(0, dash)).split('.').map(Number);
  return [core, dash < 0 ? [] : noBuild.slice(dash + 1).split('.')];
}
