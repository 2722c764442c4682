import Dispatch
import Synchronization

/// `transform` of each index in `0..<count`, computed side by side on the cores (Dispatch's
/// `concurrentPerform`, which blocks the caller until all are done), returned in index order.
public func concurrentMap<T: Sendable>(_ count: Int, _ transform: @Sendable (Int) -> T) -> [T] {
    let results = Mutex<[Int: T]>([:])
    DispatchQueue.concurrentPerform(iterations: count) { index in
        let value = transform(index)
        results.withLock { $0[index] = value }
    }
    return results.withLock { results in (0..<count).map { results[$0]! } }
}

/// `first()` and `second()`, computed side by side (two jobs of different types, for `concurrentMap`'s cores).
public func concurrently<A: Sendable, B: Sendable>(_ first: @Sendable () -> A, _ second: @Sendable () -> B) -> (A, B) {
    let a = Mutex<A?>(nil), b = Mutex<B?>(nil)
    DispatchQueue.concurrentPerform(iterations: 2) { index in
        if index == 0 {
            let value = first()
            a.withLock { $0 = value }
        } else {
            let value = second()
            b.withLock { $0 = value }
        }
    }
    return (a.withLock { $0! }, b.withLock { $0! })
}
