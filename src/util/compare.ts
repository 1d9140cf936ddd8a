/** Orders strings by code unit, as `Array.prototype.sort` does with no comparator. */
export const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
