//! TEMPORARY adapter: replaced by the berth-cgroups integration.

use std::os::fd::BorrowedFd;

use crate::error::Result;
use crate::init::CgroupView;
use crate::spawn::CgroupPlacement;
use crate::spec::Plan;

pub struct ContainerCgroup;

impl ContainerCgroup {
    pub fn create(_plan: &Plan) -> Result<Self> {
        Ok(ContainerCgroup)
    }
    pub fn from_record(_v: &serde_json::Value) -> Result<Self> {
        Ok(ContainerCgroup)
    }
    pub fn to_record(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    pub fn view(&self, _new_ns: bool) -> CgroupView {
        CgroupView::None
    }
    pub fn is_frozen(&self) -> bool {
        false
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn signal_all(&self, _sig: i32) -> Result<()> {
        Ok(())
    }
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
}

impl CgroupPlacement for ContainerCgroup {
    fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn attach(&self, _pid: i32, _cloned_into: bool) -> Result<()> {
        Ok(())
    }
}
