/**
 * An intrusive doubly linked list in access order: least recently used at the head, most recently
 * used at the tail. Nodes carry their own links, so moving one costs a few pointer writes and no
 * allocation (a `Map` delete + set would rehash the key on every hit).
 */
export interface Linked<N> {
  prev: N | null
  next: N | null
}

export class AccessOrder<N extends Linked<N>> {
  first: N | null = null
  last: N | null = null

  /** Appends at the most recently used end. */
  append(node: N): void {
    node.prev = this.last
    node.next = null
    if (this.last === null) this.first = node
    else this.last.next = node
    this.last = node
  }

  /** Inserts at the least recently used end. */
  prepend(node: N): void {
    node.next = this.first
    node.prev = null
    if (this.first === null) this.last = node
    else this.first.prev = node
    this.first = node
  }

  remove(node: N): void {
    if (node.prev === null) this.first = node.next
    else node.prev.next = node.next
    if (node.next === null) this.last = node.prev
    else node.next.prev = node.prev
    node.prev = null
    node.next = null
  }

  moveToBack(node: N): void {
    if (this.last === node) return
    this.remove(node)
    this.append(node)
  }

  clear(): void {
    this.first = null
    this.last = null
  }

  *[Symbol.iterator](): IterableIterator<N> {
    for (let node = this.first; node !== null; node = node.next) yield node
  }
}
