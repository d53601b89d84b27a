/**
 * The waiting room shared by bulkhead, rateLimiter and concurrencyLimit: an intrusive doubly
 * linked list, so a waiter whose call is aborted leaves in O(1) and never holds a slot.
 */

/** @internal A node of an intrusive doubly linked list: O(1) removal when a waiter aborts. */
export interface ListNode<N> {
  prev: N | undefined;
  next: N | undefined;
  /** The list holding the node, if any. */
  list: object | undefined;
}

/** @internal A FIFO of waiters with O(1) push, shift and removal from the middle. */
export class WaitList<N extends ListNode<N>> {
  head: N | undefined = undefined;
  tail: N | undefined = undefined;
  size = 0;

  push(node: N): void {
    node.list = this;
    node.prev = this.tail;
    node.next = undefined;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
  }

  shift(): N | undefined {
    const node = this.head;
    if (node !== undefined) this.remove(node);
    return node;
  }

  /** Removes `node` if it is in this list; returns whether it was. */
  remove(node: N): boolean {
    if (node.list !== this) return false;
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = node.list = undefined;
    this.size--;
    return true;
  }
}
