int ckvm_placeholder;
