/// Something the VM must act on after the server handled a guest message. Apply events before
/// delivering the messages of the same output (e.g. stop touching a ring before the guest
/// learns its GPADL is torn down).
public enum VMBusEvent: Sendable, Equatable {
    /// A version was negotiated; host→guest messages go to `targetVP` on `sint`.
    case connected(version: VMBusVersion, targetVP: UInt32, sint: UInt8)
    /// The guest reconnected or unloaded: drop VMBus messages still queued for the SynIC.
    case reset
    /// Start the device's rings; the open result is in the same output.
    case channelOpened(VMBusChannelOpen)
    /// Stop touching the channel's rings.
    case channelClosed(relid: UInt32, reason: VMBusChannelCloseReason)
    /// Move the channel's interrupts (SIEFP bit and MSI destination) to another VP.
    case channelRetargeted(relid: UInt32, targetVP: UInt32)
    /// A GPADL is complete; devices may use its pages (e.g. netvsc buffers).
    case gpadlCreated(GPADL)
    /// A GPADL is gone; devices must stop using its pages.
    case gpadlRemoved(handle: UInt32)
    /// The guest finished with a rescinded channel; its relid is free again.
    case relidReleased(relid: UInt32)
    /// The guest unloaded VMBus (kexec, kdump, rmmod); everything was reset.
    case unloaded
    /// An hv_sock connect request from the guest (not served by this server).
    case transportConnectRequest(endpointID: VMBusGUID, serviceID: VMBusGUID)
    /// Guest misbehaviour worth a rate-limited log line; nothing else to do.
    case diagnostic(VMBusDiagnostic)
}

/// Why a channel stopped.
public enum VMBusChannelCloseReason: Sendable, Equatable {
    case guestClosed
    case ringGPADLTornDown
    case rescinded
    case unloaded
    case reconnected
}

/// A guest error the server ignored or answered with a failure. `kind` is a stable key for
/// rate limiting; `message` is the log text.
public struct VMBusDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, Hashable {
        case undecodableMessage
        case wrongConnectionID
        case unexpectedMessage
        case unknownChannel
        case versionRefused
        case gpadlRefused
        case openRefused
        case modifyRefused
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
