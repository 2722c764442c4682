import CycloneModel

/// Ridge regression solved in closed form, as scikit-learn's `Ridge(solver="cholesky", fit_intercept=True)`.
///
/// Minimises `‖y − Xw − b‖² + alpha‖w‖²`; the intercept is not penalised. X and y are centred, then
/// `(XcᵀXc + alpha·I) w = Xcᵀyc` is solved by Cholesky and `b = ȳ − x̄·w`.
public struct RidgeTrainer: Sendable {
    public var alpha: Double

    public init(alpha: Double = 1.0) { self.alpha = alpha }

    /// - Parameters:
    ///   - x: row-major design matrix, `y.count × p`.
    public func fit(x: [Double], y: [Double], p: Int) throws(TrainingError) -> LinearPredictor {
        let n = y.count
        guard n > 0 else { throw TrainingError("no rows with a label to train on") }
        guard alpha >= 0, alpha.isFinite else { throw TrainingError("alpha must be a finite number >= 0") }
        var xMean = [Double](repeating: 0, count: p)
        var yMean = 0.0
        for i in 0..<n {
            for j in 0..<p { xMean[j] += x[i * p + j] }
            yMean += y[i]
        }
        for j in 0..<p { xMean[j] /= Double(n) }
        yMean /= Double(n)

        var gram = [Double](repeating: 0, count: p * p)
        var xty = [Double](repeating: 0, count: p)
        var row = [Double](repeating: 0, count: p)
        for i in 0..<n {
            // A cancelled task (the retrain job's SIGTERM) stops a long fit between blocks of rows.
            if i & 0xFFFF == 0xFFFF, Task.isCancelled { throw TrainingError("training was cancelled") }
            for j in 0..<p { row[j] = x[i * p + j] - xMean[j] }
            let yc = y[i] - yMean
            for j in 0..<p {
                let rj = row[j]
                if rj == 0 { continue }
                xty[j] += rj * yc
                for k in j..<p { gram[j * p + k] += rj * row[k] }
            }
        }
        for j in 0..<p {
            gram[j * p + j] += alpha
            for k in (j + 1)..<max(j + 1, p) { gram[k * p + j] = gram[j * p + k] }
        }
        guard let w = choleskySolve(gram, xty, n: p) else {
            throw TrainingError("the design matrix is singular; use alpha > 0")
        }
        var intercept = yMean
        for j in 0..<p { intercept -= xMean[j] * w[j] }
        return LinearPredictor(intercept: intercept, coefficients: w)
    }
}
