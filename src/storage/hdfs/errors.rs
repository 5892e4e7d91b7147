//! How `hdfs-native` failures become [`ErrorKind`]s: by the client's error variant and, for
//! NameNode answers, by the Hadoop exception class it names (typed data, not message text).

use hdfs_native::HdfsError;

use crate::error::{Error, ErrorKind};

pub(super) fn is_not_found(e: &HdfsError) -> bool {
    match e {
        HdfsError::FileNotFound(_) => true,
        HdfsError::RPCError(class, _) => {
            class == "java.io.FileNotFoundException"
                || class == "org.apache.hadoop.fs.ParentNotDirectoryException"
        }
        _ => false,
    }
}

/// Maps an `hdfs-native` error to the crate's kinds. `what` names the operation.
pub fn map_error(what: &str, e: HdfsError) -> Error {
    use std::io::ErrorKind as Io;
    let kind = match &e {
        HdfsError::FileNotFound(_) | HdfsError::IsADirectoryError(_) => ErrorKind::NotFound,
        HdfsError::AlreadyExists(_) => ErrorKind::PreconditionFailed,
        HdfsError::IOError(io) if io.kind() == Io::TimedOut => ErrorKind::Timeout,
        HdfsError::IOError(_)
        | HdfsError::DataTransferError(_)
        | HdfsError::ChecksumError
        | HdfsError::BlocksNotFound(_)
        | HdfsError::OperationFailed(_)
        | HdfsError::InvalidRPCResponse(_) => ErrorKind::BackendUnavailable,
        HdfsError::SASLError(_) | HdfsError::GSSAPIError(..) | HdfsError::NoSASLMechanism => {
            ErrorKind::BackendAuth
        }
        HdfsError::RPCError(class, _) | HdfsError::FatalRPCError(class, _) => {
            match class.rsplit('.').next().unwrap_or("") {
                "FileNotFoundException" => ErrorKind::NotFound,
                "FileAlreadyExistsException"
                | "AlreadyBeingCreatedException"
                | "ParentNotDirectoryException" => ErrorKind::PreconditionFailed,
                // org.apache.hadoop.hdfs.protocol.{DSQuotaExceeded,NSQuotaExceeded}Exception and
                // their parent: the directory's space or name quota is used up.
                "DSQuotaExceededException"
                | "NSQuotaExceededException"
                | "QuotaExceededException"
                | "QuotaByStorageTypeExceededException" => ErrorKind::InsufficientStorage,
                "AccessControlException"
                | "AuthorizationException"
                | "InvalidToken"
                | "SaslException"
                | "GSSException" => ErrorKind::BackendAuth,
                "SafeModeException"
                | "StandbyException"
                | "RetriableException"
                | "ObserverRetryOnActiveException"
                | "LeaseExpiredException"
                | "NotReplicatedYetException" => ErrorKind::BackendUnavailable,
                _ if matches!(e, HdfsError::FatalRPCError(..)) => ErrorKind::BackendUnavailable,
                _ => ErrorKind::Internal,
            }
        }
        HdfsError::InvalidPath(_) | HdfsError::InvalidArgument(_) | HdfsError::UrlParseError(_) => {
            ErrorKind::InvalidInput
        }
        HdfsError::UnsupportedFeature(_) | HdfsError::UnsupportedErasureCodingPolicy(_) => {
            ErrorKind::Unsupported
        }
        _ => ErrorKind::Internal,
    };
    let message = match kind {
        ErrorKind::BackendAuth => format!("HDFS refused the gateway's user during {what}: {e}"),
        ErrorKind::InsufficientStorage => {
            format!("HDFS has no room for {what} (a quota is used up): {e}")
        }
        ErrorKind::BackendUnavailable | ErrorKind::Timeout => {
            format!("HDFS is unavailable during {what}: {e}")
        }
        _ => format!("HDFS {what} failed: {e}"),
    };
    Error::new(kind, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hadoop_exceptions_map_to_kinds() {
        let rpc = |c: &str| HdfsError::RPCError(c.to_string(), "m".to_string());
        let cases = [
            (rpc("java.io.FileNotFoundException"), ErrorKind::NotFound),
            (
                rpc("org.apache.hadoop.security.AccessControlException"),
                ErrorKind::BackendAuth,
            ),
            (
                rpc("org.apache.hadoop.hdfs.server.namenode.SafeModeException"),
                ErrorKind::BackendUnavailable,
            ),
            (
                rpc("org.apache.hadoop.ipc.StandbyException"),
                ErrorKind::BackendUnavailable,
            ),
            (
                rpc("org.apache.hadoop.fs.ParentNotDirectoryException"),
                ErrorKind::PreconditionFailed,
            ),
            (
                HdfsError::AlreadyExists("x".into()),
                ErrorKind::PreconditionFailed,
            ),
            (
                HdfsError::IOError(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                ErrorKind::BackendUnavailable,
            ),
            (
                HdfsError::IOError(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                ErrorKind::Timeout,
            ),
            (HdfsError::ChecksumError, ErrorKind::BackendUnavailable),
            (
                rpc("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException"),
                ErrorKind::InsufficientStorage,
            ),
            (
                rpc("org.apache.hadoop.hdfs.protocol.NSQuotaExceededException"),
                ErrorKind::InsufficientStorage,
            ),
        ];
        for (e, want) in cases {
            let shown = e.to_string();
            assert_eq!(map_error("op", e).kind(), want, "{shown}");
        }
    }
}
