/**
 * Watches a promise without awaiting it, so a test can move a TestClock and then look at the
 * outcome. Attaching handlers at once also keeps a rejection that happens during `advance` from
 * being reported as unhandled.
 */
export interface Observed<T> {
  readonly state: 'pending' | 'fulfilled' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
  /** The same promise, for `await expect(observed.promise).rejects...`. */
  readonly promise: Promise<T>;
}

export function observe<T>(promise: Promise<T>): Observed<T> {
  const observed = {
    state: 'pending' as Observed<T>['state'],
    value: undefined as T | undefined,
    error: undefined as unknown,
    promise,
  };
  promise.then(
    value => {
      observed.state = 'fulfilled';
      observed.value = value;
    },
    (error: unknown) => {
      observed.state = 'rejected';
      observed.error = error;
    },
  );
  return observed;
}
