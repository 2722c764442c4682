import CycloneModel
import Foundation

/// A year of hourly bike-rental demand in one city, synthetic and seeded: the same stream every time.
///
/// Demand follows the hour (commuting peaks on working days, a midday hump at weekends and on holidays),
/// the temperature (best around 24 °C), the weather (a persistent Markov chain of clear, mist, rain and
/// storm), humidity and wind, and grows through the year. Its pattern also changes twice, as real
/// demand does:
/// - from 1 April an e-bike fleet arrives: leisure riding grows by half and the morning peak moves from
///   8:00 to 7:00;
/// - from 15 September hybrid working empties Monday and Friday commutes by 40 %.
///
/// The columns are those of the UCI bike-sharing data: `time`, `hour`, `weekday`, `workingday`, `season`,
/// `weather`, `temp` (°C), `humidity` (0–1), `wind` (m/s) and `count`, the rentals in that hour.
struct BikeStream {
    static let start = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01T00:00:00Z
    static let eBikes = 90  // 1 April, day of the year from 0
    static let hybridWork = 257  // 15 September
    static let holidays: Set<Int> = [0, 107, 110, 145, 184, 243, 330, 358, 359]

    var seed: UInt64 = 2025

    /// `days` days from 1 January, as CSV.
    func csv(days: Int) -> CSV {
        var random = SplitMix64(seed: seed)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        let weathers = ["clear", "mist", "rain", "storm"]
        // Hour-to-hour weather: mostly it stays; it moves to a neighbouring state more than far.
        let transitions: [[Double]] = [[0.93, 0.05, 0.018, 0.002], [0.08, 0.85, 0.06, 0.01],
                                       [0.04, 0.10, 0.82, 0.04], [0.02, 0.08, 0.25, 0.65]]
        var weather = 0
        var warmth = 0.0  // the day's departure from the seasonal temperature, slowly wandering
        var rows: [[String]] = []
        rows.reserveCapacity(days * 24)
        for index in 0..<(days * 24) {
            let day = index / 24, hour = index % 24
            let time = Self.start.addingTimeInterval(Double(index) * 3_600)
            let weekday = calendar.component(.weekday, from: time) - 1
            let month = calendar.component(.month, from: time)
            let working = (1...5).contains(weekday) && !Self.holidays.contains(day)
            let season = ["winter", "spring", "summer", "autumn"][(month % 12) / 3]
            if hour == 0 { warmth = 0.7 * warmth + 2.2 * random.normal() }

            let draw = random.uniform()
            var cumulative = 0.0
            for (next, p) in transitions[weather].enumerated() {
                cumulative += p
                if draw < cumulative { weather = next; break }
            }
            let seasonal = 12 - 11 * cos(2 * .pi * (Double(day) - 15) / 365)
            let temp = seasonal + warmth + 4 * cos(2 * .pi * (Double(hour) - 15) / 24) + 0.8 * random.normal()
                - [0, 1, 3, 5][weather]
            let humidity = min(1, max(0.12, 0.5 + [0, 0.15, 0.3, 0.35][weather] - 0.01 * (temp - 12)
                                      + 0.08 * random.normal()))
            let wind = abs(3 + [0, 0.5, 2, 7][weather] + (season == "winter" ? 1.5 : 0) + 2 * random.normal())

            var mean = Self.demand(day: day, hour: hour, weekday: weekday, working: working)
            let comfort = exp(-pow((temp - 24) / 12, 2))
            mean *= 0.2 + 0.95 * comfort
            mean *= [1, 0.85, 0.45, 0.15][weather]
            mean *= 1 - 0.35 * (humidity - 0.5) - 0.015 * wind
            mean *= 1 + 0.35 * Double(day) / 365
            let count = max(0, (mean + 1.5 * mean.squareRoot() * random.normal()).rounded())

            rows.append([
                time.formatted(.iso8601), "\(hour)", weekdays[weekday], "\(working)", season, weathers[weather],
                String(format: "%.1f", temp), String(format: "%.2f", humidity), String(format: "%.1f", wind),
                "\(Int(count))",
            ])
        }
        return CSV(header: ["time", "hour", "weekday", "workingday", "season", "weather", "temp", "humidity",
                            "wind", "count"], rows: rows)
    }

    /// Rentals an hour in good conditions, before the weather and the growth.
    static func demand(day: Int, hour: Int, weekday: Int, working: Bool) -> Double {
        let h = Double(hour)
        func peak(_ at: Double, _ width: Double) -> Double { exp(-pow((h - at) / width, 2)) }
        let eBikes = day >= Self.eBikes
        let night = 12 + 30 * peak(13, 5)
        guard working else {
            return night + (eBikes ? 1.5 : 1) * 320 * peak(14, 3.5)
        }
        var commute = 520 * peak(eBikes ? 7 : 8, 1) + 470 * peak(17.5, 1.3)
        if day >= Self.hybridWork && (weekday == 1 || weekday == 5) { commute *= 0.6 }
        return night + commute + (eBikes ? 1.5 : 1) * 110 * peak(13, 3)
    }
}
