//! Choosing the device, and so the backend, that the networks run on.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// The compute backends sound2scene can run on.
///
/// `Flex` (Burn's pure-Rust CPU backend) is always available; `Wgpu` and `Cuda` are compiled in
/// with the cargo features of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// Burn's CPU backend (SIMD + rayon), the default.
    #[default]
    Flex,
    /// A GPU through wgpu (Vulkan, Metal, DX12); needs the `wgpu` feature.
    Wgpu,
    /// An NVIDIA GPU through CUDA; needs the `cuda` feature.
    Cuda,
}

/// The backend the user asked for is not compiled into this build.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The backend's cargo feature was not enabled at build time.
    #[error(
        "the {0} backend is not compiled into this build; rebuild with `--features {0}` \
         (e.g. `cargo run --release --features {0} -- ...`) or use `--device flex`"
    )]
    NotCompiled(BackendKind),
    /// Zero devices were asked for.
    #[error("the number of devices must be at least 1")]
    Count,
    /// The name is not one of `flex`, `wgpu`, `cuda`.
    #[error("unknown device '{0}': expected flex, wgpu or cuda")]
    Unknown(String),
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

impl FromStr for BackendKind {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flex" | "cpu" => Ok(BackendKind::Flex),
            "wgpu" | "gpu" | "vulkan" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => Err(DeviceError::Unknown(other.to_string())),
        }
    }
}

impl BackendKind {
    /// Whether this build can run on the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => true,
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backend's default device (the first GPU for `Wgpu` and `Cuda`).
    ///
    /// # Errors
    /// [`DeviceError::NotCompiled`] when the backend's feature is off in this build.
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(Device::cuda(0usize)),
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotCompiled(other)),
        }
    }

    /// `count` devices of the backend for data-parallel training: CUDA GPUs `0..count`,
    /// wgpu discrete GPUs `0..count` (the default device when `count` is 1), or, for `Flex`,
    /// `count` handles of the one CPU device (copies that take turns: no faster, useful to
    /// check a multi-device run on a machine without GPUs).
    ///
    /// # Errors
    /// [`DeviceError::NotCompiled`] when the backend's feature is off in this build;
    /// [`DeviceError::Count`] for a count of 0.
    pub fn devices(self, count: usize) -> Result<Vec<Device>, DeviceError> {
        if count == 0 {
            return Err(DeviceError::Count);
        }
        if count == 1 {
            return Ok(vec![self.device()?]);
        }
        match self {
            BackendKind::Flex => Ok(vec![Device::flex(); count]),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok((0..count)
                .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
                .collect()),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok((0..count).map(Device::cuda).collect()),
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotCompiled(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("flex".parse::<BackendKind>().ok(), Some(BackendKind::Flex));
        assert_eq!("WGPU".parse::<BackendKind>().ok(), Some(BackendKind::Wgpu));
        assert!("tpu".parse::<BackendKind>().is_err());
    }

    #[test]
    fn missing_backend_is_a_clear_error() {
        if !BackendKind::Cuda.is_compiled() {
            let err = BackendKind::Cuda
                .device()
                .expect_err("cuda is not compiled in");
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        assert!(BackendKind::Flex.device().is_ok());
    }

    #[test]
    fn several_devices_or_a_clear_error() {
        assert_eq!(BackendKind::Flex.devices(3).map(|d| d.len()).ok(), Some(3));
        assert!(BackendKind::Flex.devices(0).is_err());
        if !BackendKind::Cuda.is_compiled() {
            assert!(BackendKind::Cuda.devices(2).is_err());
        }
    }
}
