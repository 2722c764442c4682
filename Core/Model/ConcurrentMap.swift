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
