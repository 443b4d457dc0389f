// A TypeScript module: the dynamic-provider process has no TypeScript loader,
// so requiring this file from a serialized handler fails there.
export function double(n: number): number {
    return n * 2;
}
