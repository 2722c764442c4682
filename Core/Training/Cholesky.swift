/// Solves `A x = b` for a symmetric positive-definite `A` (row-major, n × n) by Cholesky factorisation.
///
/// Returns `nil` when `A` is not positive definite (a pivot ≤ 0). Cost n³/3; the trainers call it on
/// matrices of the design width, so n is in the tens or hundreds.
func choleskySolve(_ a: [Double], _ b: [Double], n: Int) -> [Double]? {
    var l = a
    for j in 0..<n {
        var d = l[j * n + j]
        for k in 0..<j { d -= l[j * n + k] * l[j * n + k] }
        guard d > 0, d.isFinite else { return nil }
        let root = d.squareRoot()
        l[j * n + j] = root
        for i in (j + 1)..<max(j + 1, n) {
            var s = l[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = s / root
        }
    }
    // Forward then back substitution.
    var y = b
    for i in 0..<n {
        var s = y[i]
        for k in 0..<i { s -= l[i * n + k] * y[k] }
        y[i] = s / l[i * n + i]
    }
    var x = y
    for i in stride(from: n - 1, through: 0, by: -1) {
        var s = x[i]
        for k in (i + 1)..<max(i + 1, n) { s -= l[k * n + i] * x[k] }
        x[i] = s / l[i * n + i]
    }
    return x
}
