/// Every request the API understands, as one value: the router produces it, the controller executes it
/// (Firecracker's `VmmAction`). A request that is not one of these never reaches the controller.
public enum APIAction: Equatable, Sendable {
    case getInstanceInfo
    case getVersion
    case getMachineConfig
    case getFullConfiguration
    case getMMDS

    case putBootSource(BootSource)
    case putMachineConfig(MachineConfig)
    case patchMachineConfig(PartialMachineConfig)
    case putDrive(Drive)
    case patchDrive(PartialDrive)
    case putNetworkInterface(NetworkInterface)
    case patchNetworkInterface(PartialNetworkInterface)
    case putVsock(Vsock)
    case putEntropy(Entropy)
    case putLogger(LoggerConfig)
    case putMetrics(MetricsConfig)
    case putMMDS(JSONValue)
    case patchMMDS(JSONValue)
    case putMMDSConfig(MmdsConfig)

    /// `PUT /actions`.
    case instanceStart
    case sendCtrlAltDel
    case flushMetrics

    /// `PATCH /vm`.
    case pause
    case resume

    /// `PUT /snapshot/create` (after boot, on a paused VM).
    case createSnapshot(SnapshotCreateParams)
    /// `PUT /snapshot/load` (in a process that has not booted, before any boot-specific resource is configured).
    case loadSnapshot(SnapshotLoad)
}
