/** Vector arithmetic on `Float32Array`s, shared by the embedders and the in-memory search. */

/** The Euclidean length of `v`. */
export const norm = (v: Float32Array): number => {
  let sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!
  return Math.sqrt(sum)
}

/** Scales `v` to unit length in place (a zero vector stays zero). */
export const normalize = (v: Float32Array): Float32Array => {
  const length = norm(v)
  if (length > 0) {
    const scale = 1 / length
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
