import CycloneModel
import Foundation

/// L2-regularised logistic regression fitted by Newton's method, as scikit-learn's
/// `LogisticRegression(C=…, solver="newton-cholesky")`: binary with one coefficient row for `classes[1]`,
/// multinomial (softmax over all K classes, K rows) for more classes.
///
/// Minimises `C · Σᵢ loss(xᵢ, yᵢ) + ½‖W‖²`; intercepts are not penalised. Multinomial intercepts are only
/// defined up to a common constant; they are returned centred to sum to 0, as scikit-learn does.
/// Each step solves the Newton system by Cholesky and backtracks until the objective decreases; it stops when
/// the largest gradient entry is below `tolerance · max(1, C·n)`. Cost per step: n·(K(p+1))² for the Hessian.
public struct LogisticTrainer: Sendable {
    public var c: Double
    public var tolerance: Double
    public var maxIterations: Int

    public init(c: Double = 1.0, tolerance: Double = 1e-14, maxIterations: Int = 100) {
        self.c = c
        self.tolerance = tolerance
        self.maxIterations = maxIterations
    }

    /// - Parameters:
    ///   - x: row-major design matrix, `labels.count × p`.
    ///   - labels: class index of each row, in `0..<classCount`.
    public func fit(x: [Double], labels: [Int], classCount: Int, p: Int) throws(TrainingError)
        -> (intercepts: [Double], coefficients: [[Double]])
    {
        let n = labels.count
        guard n > 0 else { throw TrainingError("no rows with a label to train on") }
        guard classCount >= 2 else { throw TrainingError("logistic regression needs at least two classes in the labels") }
        guard c > 0, c.isFinite else { throw TrainingError("C must be a finite number above 0") }
        let rows = classCount == 2 ? 1 : classCount
        let q = p + 1  // coefficients then the intercept, per row
        let m = rows * q
        var theta = [Double](repeating: 0, count: m)
        // Fixes the direction along which multinomial intercepts can move without changing the objective;
        // the optimum then has intercepts summing to 0. Scaled like the data term for conditioning.
        let mu = rows > 1 ? c * Double(n) / Double(rows) : 0

        func objective(_ theta: [Double]) -> Double {
            var loss = 0.0
            var z = [Double](repeating: 0, count: rows)
            for i in 0..<n {
                scores(theta, row: i, into: &z)
                if rows == 1 {
                    let s = labels[i] == 1 ? -z[0] : z[0]  // loss = log(1 + exp(s))
                    loss += s > 0 ? s + log1p(exp(-s)) : log1p(exp(s))
                } else {
                    let top = z.max()!
                    var sum = 0.0
                    for k in 0..<rows { sum += exp(z[k] - top) }
                    loss += top + log(sum) - z[labels[i]]
                }
            }
            var penalty = 0.0
            var interceptSum = 0.0
            for r in 0..<rows {
                for j in 0..<p { penalty += theta[r * q + j] * theta[r * q + j] }
                interceptSum += theta[r * q + p]
            }
            return c * loss + 0.5 * penalty + 0.5 * mu * interceptSum * interceptSum
        }

        func scores(_ theta: [Double], row i: Int, into z: inout [Double]) {
            x.withUnsafeBufferPointer { x in
                theta.withUnsafeBufferPointer { t in
                    for r in 0..<rows {
                        var s = t[r * q + p]
                        for j in 0..<p { s += t[r * q + j] * x[i * p + j] }
                        z[r] = s
                    }
                }
            }
        }

        var value = objective(theta)
        for _ in 0..<maxIterations {
            // A cancelled task (the retrain job's SIGTERM) stops the fit between Newton steps.
            if Task.isCancelled { throw TrainingError("training was cancelled") }
            var gradient = [Double](repeating: 0, count: m)
            var hessian = [Double](repeating: 0, count: m * m)
            var z = [Double](repeating: 0, count: rows)
            var residual = [Double](repeating: 0, count: rows)
            var prob = [Double](repeating: 0, count: rows)
            var xi = [Double](repeating: 1, count: q)
            for i in 0..<n {
                scores(theta, row: i, into: &z)
                for j in 0..<p { xi[j] = x[i * p + j] }
                if rows == 1 {
                    prob[0] = sigmoid(z[0])
                    residual[0] = prob[0] - (labels[i] == 1 ? 1 : 0)
                } else {
                    let top = z.max()!
                    var sum = 0.0
                    for k in 0..<rows { prob[k] = exp(z[k] - top); sum += prob[k] }
                    for k in 0..<rows { prob[k] /= sum; residual[k] = prob[k] - (labels[i] == k ? 1 : 0) }
                }
                for r in 0..<rows {
                    let g = c * residual[r]
                    for a in 0..<q { gradient[r * q + a] += g * xi[a] }
                    for s in r..<rows {
                        // d²/dz_r dz_s of the loss: p_r(δ_rs − p_s); binary: p(1 − p).
                        let w = c * (rows == 1 ? prob[0] * (1 - prob[0]) : prob[r] * ((r == s ? 1 : 0) - prob[s]))
                        if w == 0 { continue }
                        for a in 0..<q {
                            let wa = w * xi[a]
                            let base = (r * q + a) * m + s * q
                            for b in 0..<q { hessian[base + b] += wa * xi[b] }
                        }
                    }
                }
            }
            // Penalty terms, then mirror the upper block triangle.
            var interceptSum = 0.0
            for r in 0..<rows { interceptSum += theta[r * q + p] }
            for r in 0..<rows {
                for j in 0..<p {
                    gradient[r * q + j] += theta[r * q + j]
                    hessian[(r * q + j) * m + r * q + j] += 1
                }
                gradient[r * q + p] += mu * interceptSum
                for s in 0..<rows { hessian[(r * q + p) * m + s * q + p] += mu }
            }
            for r in 0..<rows {
                for s in (r + 1)..<max(r + 1, rows) {
                    for a in 0..<q { for b in 0..<q { hessian[(s * q + a) * m + r * q + b] = hessian[(r * q + b) * m + s * q + a] } }
                }
            }
            let gmax = gradient.map(abs).max()!
            if gmax <= tolerance * max(1, c * Double(n)) { break }
            guard let step = choleskySolve(hessian, gradient, n: m) else {
                throw TrainingError("the Newton system is singular; the data may be degenerate")
            }
            // Backtrack until the objective does not increase. Near the optimum the decrease falls below what
            // the objective can resolve in double precision, so a step within round-off counts as accepted;
            // the gradient test above decides when to stop.
            let slack = 1e-13 * max(1, abs(value))
            var t = 1.0
            var accepted = false
            for _ in 0..<40 {
                let candidate = (0..<m).map { theta[$0] - t * step[$0] }
                let candidateValue = objective(candidate)
                if candidateValue <= value + slack {
                    theta = candidate
                    value = min(value, candidateValue)
                    accepted = true
                    break
                }
                t /= 2
            }
            let stepSize = step.map(abs).max()! * t
            if !accepted || stepSize <= 1e-15 * max(1, theta.map(abs).max()!) { break }
        }
        var intercepts = (0..<rows).map { theta[$0 * q + p] }
        if rows > 1 {
            let mean = intercepts.reduce(0, +) / Double(rows)
            intercepts = intercepts.map { $0 - mean }
        }
        let coefficients = (0..<rows).map { r in Array(theta[(r * q)..<(r * q + p)]) }
        return (intercepts, coefficients)
    }
}
