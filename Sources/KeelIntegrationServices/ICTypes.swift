import KeelVMBus

/// The Hyper-V integration components this host offers (hv_utils binds all three).
public enum IntegrationServiceKind: Sendable, CaseIterable {
    case heartbeat, shutdown, timeSync

    /// The VMBus offer, made the way Hyper-V makes IC offers (message-mode pipe).
    /// Shutdown and time sync use Hyper-V's instance GUIDs; heartbeat uses a fixed Keel GUID
    /// (Linux accepts any unique instance GUID).
    public var offer: VMBusChannelOffer {
        switch self {
        case .heartbeat: .integrationComponent(classID: VMBusDeviceClass.heartbeat, instanceID: Self.heartbeatInstance)
        case .shutdown: .integrationComponent(classID: VMBusDeviceClass.shutdown, instanceID: Self.shutdownInstance)
        case .timeSync: .integrationComponent(classID: VMBusDeviceClass.timeSync, instanceID: Self.timeSyncInstance)
        }
    }

    /// Short name for logs.
    public var name: String {
        switch self {
        case .heartbeat: "heartbeat"
        case .shutdown: "shutdown"
        case .timeSync: "timesync"
        }
    }

    /// Message versions the host offers by default (OpenVMM's lists; order is irrelevant to Linux).
    public var messageVersions: [ICVersion] {
        switch self {
        case .heartbeat: [ICVersion(1, 0), ICVersion(3, 0)]
        case .shutdown: [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)]
        case .timeSync: [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0)]
        }
    }

    /// Framework versions the host offers for every service.
    public static let frameworkVersions: [ICVersion] = [ICVersion(1, 0), ICVersion(3, 0)]

    /// The `icmsgtype` of this service's requests.
    var messageType: UInt16 {
        switch self {
        case .heartbeat: ICMessageType.heartbeat
        case .shutdown: ICMessageType.shutdown
        case .timeSync: ICMessageType.timeSync
        }
    }

    private static func guid(_ text: String) -> VMBusGUID { VMBusGUID(text) ?? .zero }
    static let heartbeatInstance = guid("4b45454c-6862-4963-8000-000000000001")
    static let shutdownInstance = guid("b6650ff7-33bc-4840-8048-e0676786f393")
    static let timeSyncInstance = guid("2dd1ce17-079e-403c-b352-a1921ee207ee")
}

/// An IC framework or message version ("3.0"), compared major first.
public struct ICVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    public init(_ major: UInt16, _ minor: UInt16) { self.init(major: major, minor: minor) }

    public static func < (a: ICVersion, b: ICVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }
}

/// The (framework, message) version pair a guest chose; used in every later header.
public struct ICNegotiatedVersions: Sendable, Equatable {
    public var framework: ICVersion
    public var message: ICVersion

    public init(framework: ICVersion, message: ICVersion) {
        self.framework = framework
        self.message = message
    }
}

/// Host clock readings supplied by the caller, so the state machine stays pure and testable.
public struct ICClock: Sendable, Equatable {
    /// Host monotonic time; drives intervals and timeouts.
    public var monotonicNanoseconds: UInt64
    /// Host UTC wall clock in 100 ns units since 1601-01-01 (time sync `parent_time`).
    public var hostUTC100ns: UInt64
    /// The guest's Hyper-V reference counter (100 ns ticks) at the same instant (time sync v4).
    public var referenceTime100ns: UInt64

    public init(monotonicNanoseconds: UInt64, hostUTC100ns: UInt64 = 0, referenceTime100ns: UInt64 = 0) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.hostUTC100ns = hostUTC100ns
        self.referenceTime100ns = referenceTime100ns
    }
}

/// What a host-initiated shutdown request asks the guest to do.
public enum ShutdownKind: Sendable, Equatable {
    case powerOff, reboot
}

/// Something the caller may want to log or act on, reported by `IntegrationService`.
public enum ICEvent: Sendable, Equatable {
    /// The guest chose these versions; the service is running.
    case negotiated(framework: ICVersion, message: ICVersion)
    /// The guest answered the negotiation with no common version (counts 0).
    case negotiationFailed
    /// The guest answered a heartbeat; `sequence` is the number it returned.
    case heartbeat(sequence: UInt64)
    /// A heartbeat went unanswered past the timeout ("not healthy"); once per episode.
    case heartbeatMissed(outstandingFor: UInt64)
    /// The guest accepted a shutdown request and is shutting down or rebooting.
    case shutdownAccepted(ShutdownKind)
    /// The guest refused a shutdown request with this HRESULT.
    case shutdownRefused(status: UInt32)
    /// The guest acknowledged a time sample; `sync` is true for a SYNC ("set the clock now").
    case timeSynchronized(sync: Bool)
    /// A malformed or unexpected guest packet, for a rate-limited log line.
    case diagnostic(String)
}
