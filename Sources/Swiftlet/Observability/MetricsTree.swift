// The shape of one metrics line before it becomes JSON: ordered groups of counters and gauges.
//
// Firecracker has two kinds of metric (src/vmm/src/logger/metrics.rs):
//   - SharedIncMetric, a counter: each flush reports the increase since the previous flush (it keeps the value it
//     last reported and serialises `current − last`), so counters read as "per flush interval";
//   - SharedStoreMetric, a gauge: reported as it is, never reset (startup times, pause/resume latencies,
//     latency minimum/maximum).
// Our sources report totals that only grow; `MetricsBaseline` keeps what each counter showed at the last flush
// and turns totals into Firecracker's deltas. Keys keep their order, which is Firecracker's serialisation order.

/// One value on a metrics line.
indirect enum MetricValue: Sendable {
    /// A running total; reported as the increase since the last flush.
    case counter(UInt64)
    /// A value reported as it is.
    case gauge(UInt64)
    case group(MetricGroup)
}

typealias MetricGroup = [(key: String, value: MetricValue)]

extension MetricValue {
    /// Firecracker's `LatencyAggregateMetrics`: min and max are gauges, the sum a counter.
    static func latencyAggregate(minimum: UInt64 = 0, maximum: UInt64 = 0, sum: UInt64 = 0) -> MetricValue {
        .group([("min_us", .gauge(minimum)), ("max_us", .gauge(maximum)), ("sum_us", .counter(sum))])
    }

    /// A group of counters named `fields`, taking values from `values` (absent ones are 0).
    static func counters(_ fields: [String], _ values: [String: UInt64] = [:]) -> MetricValue {
        .group(fields.map { ($0, .counter(values[$0] ?? 0)) })
    }

    /// The same shape with every number 0.
    var zeroed: MetricValue {
        switch self {
        case .counter: .counter(0)
        case .gauge: .gauge(0)
        case let .group(group): .group(group.map { ($0.key, $0.value.zeroed) })
        }
    }

    /// Field-wise sum of same-shaped deltas, as Firecracker builds its `block`/`net` aggregates: counters add up;
    /// gauges are not aggregated and stay 0 (Firecracker's `aggregate` only sums SharedIncMetrics).
    static func aggregate(_ values: [MetricValue], shape: MetricValue) -> MetricValue {
        switch shape {
        case .counter:
            var total: UInt64 = 0
            for case let .counter(value) in values { total &+= value }
            return .counter(total)
        case .gauge:
            return .gauge(0)
        case let .group(fields):
            return .group(fields.map { field in
                let children = values.compactMap { value -> MetricValue? in
                    guard case let .group(group) = value else { return nil }
                    return group.first { $0.key == field.key }?.value
                }
                return (field.key, aggregate(children, shape: field.value))
            })
        }
    }
}

/// What each counter showed at the last flush, by path ("block_rootfs/read_bytes").
struct MetricsBaseline: Sendable {
    private var last: [String: UInt64] = [:]

    /// `value` with every counter replaced by its increase since the baseline; with `commit`, the baseline moves
    /// to the current totals. A total below the baseline (a source that restarted from 0) is reported whole.
    mutating func delta(_ value: MetricValue, path: String, commit: Bool) -> MetricValue {
        switch value {
        case let .counter(total):
            let previous = last[path] ?? 0
            if commit { last[path] = total }
            return .counter(total >= previous ? total - previous : total)
        case .gauge:
            return value
        case let .group(group):
            return .group(group.map { ($0.key, delta($0.value, path: path + "/" + $0.key, commit: commit)) })
        }
    }
}

/// JSON for a metrics line: an object whose values are unsigned integers or objects. Keys are escaped (a drive
/// id is user input), numbers are plain decimal.
enum MetricsJSON {
    static func render(_ group: MetricGroup, into out: inout String) {
        out += "{"
        for (index, field) in group.enumerated() {
            if index > 0 { out += "," }
            appendString(field.key, to: &out)
            out += ":"
            switch field.value {
            case let .counter(value), let .gauge(value): out += String(value)
            case let .group(inner): render(inner, into: &out)
            }
        }
        out += "}"
    }

    static func appendString(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
