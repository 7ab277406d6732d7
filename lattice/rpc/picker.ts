/**
 * Smooth weighted round robin (nginx's algorithm): over any run of `total weight` picks every
 * version gets exactly its share, and the picks of a heavy version are spread out rather than
 * bunched (weights 5/1/1 pick a a b a c a a, not a a a a a b c).
 */
export class WeightedPicker {
  private readonly current = new Map<string, number>();

  /** The next version for `weights` (version, weight > 0), which must not be empty. */
  pick(weights: readonly (readonly [string, number])[]): string {
    let total = 0;
    let best: string | undefined;
    let bestValue = -Infinity;
    for (const [version, weight] of weights) {
      const value = (this.current.get(version) ?? 0) + weight;
      this.current.set(version, value);
      total += weight;
      if (value > bestValue) {
        bestValue = value;
        best = version;
      }
    }
    if (best === undefined) throw new Error('WeightedPicker.pick needs at least one weighted version');
    this.current.set(best, bestValue - total);
    return best;
  }
}
