/// `PUT /logger` (before boot only): where log lines go and how they look; handed to the backend as
/// `LoggerSettings`.
public struct LoggerConfig: Codable, Sendable, Equatable {
    /// The levels Firecracker accepts, in any capitalisation ("Warn" is its old spelling of "Warning").
    static let levels = ["off", "error", "warning", "warn", "info", "debug", "trace"]

    public var logPath: String?
    public var level: String?
    public var showLevel: Bool?
    public var showLogOrigin: Bool?
    public var module: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case logPath = "log_path"
        case level
        case showLevel = "show_level"
        case showLogOrigin = "show_log_origin"
        case module
    }

    public init(logPath: String? = nil, level: String? = nil, showLevel: Bool? = nil, showLogOrigin: Bool? = nil, module: String? = nil) {
        self.logPath = logPath
        self.level = level
        self.showLevel = showLevel
        self.showLogOrigin = showLogOrigin
        self.module = module
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        logPath = try container.decodeIfPresent(String.self, forKey: .logPath)
        level = try container.decodeIfPresent(String.self, forKey: .level)
        if let level, !Self.levels.contains(level.lowercased()) {
            throw BodyError(detail: "unknown variant `\(level)` for `level`, expected one of `Off`, `Error`, `Warning`, `Info`, `Debug`, `Trace`")
        }
        showLevel = try container.decodeIfPresent(Bool.self, forKey: .showLevel)
        showLogOrigin = try container.decodeIfPresent(Bool.self, forKey: .showLogOrigin)
        module = try container.decodeIfPresent(String.self, forKey: .module)
    }

    var settings: LoggerSettings {
        LoggerSettings(logPath: logPath, level: level, showLevel: showLevel, showLogOrigin: showLogOrigin, module: module)
    }
}
