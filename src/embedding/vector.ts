/** Vector arithmetic on `Float32Array`s, shared by the embedders and the in-memory search. */

/** Scales `v` to unit length in place (a zero vector stays zero). */
export const normalize = (v: Float32Array): Float32Array => {
  let norm = 0
  for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm)
    for (let i = 0; i < v.length; i++) v[i]! *= scale
  }
  return v
}

/** The dot product of `a` and the `dimensions` floats of `rows` that start at `offset` (cosine, for unit vectors). */
export const dot = (a: Float32Array, rows: Float32Array, offset: number, dimensions: number): number => {
  let sum = 0
  for (let j = 0; j < dimensions; j++) sum += a[j]! * rows[offset + j]!
  return sum
}
