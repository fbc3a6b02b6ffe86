/**
 * The project's one string hash: 32-bit FNV-1a. The cache engine's frequency sketch and the
 * feature-hashing embedder both hash with it (the embedder's vectors are stored: changing this
 * changes every stored vector of a feature-hashing store).
 */

/** FNV-1a's offset basis: the seed of the plain hash. */
export const FNV_OFFSET = 0x811c9dc5

const FNV_PRIME = 0x01000193

/** The FNV-1a hash of a text's UTF-16 units from `seed` (another seed gives an independent hash), unsigned. */
export const fnv1a = (text: string, seed: number = FNV_OFFSET): number => {
  let h = seed
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return h >>> 0
}
